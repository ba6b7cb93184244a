"""Alembic environment: segmail's own version table, so it can live in Airflow's database."""

from __future__ import annotations

from alembic import context

from segmail.store.migrate import VERSION_TABLE
from segmail.store.models import Base


def run_migrations_online() -> None:
    connection = context.config.attributes["connection"]
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


if getattr(context, "config", None) is not None:  # Airflow's plugin loader imports this file too
    run_migrations_online()
