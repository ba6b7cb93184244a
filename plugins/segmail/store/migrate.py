"""Apply segmail's Alembic migrations programmatically (used by the CLI, the DAGs and the tests)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

from segmail.store.db import default_engine

VERSION_TABLE = "segmail_alembic_version"
MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def alembic_config(connection) -> Config:  # noqa: ANN001 - a SQLAlchemy Connection
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def upgrade(engine: Engine | None = None, revision: str = "head") -> None:
    engine = engine or default_engine()
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), revision)


def downgrade(engine: Engine | None = None, revision: str = "base") -> None:
    engine = engine or default_engine()
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), revision)


def current_revision(engine: Engine | None = None) -> str | None:
    from alembic.runtime.migration import MigrationContext

    engine = engine or default_engine()
    with engine.connect() as connection:
        ctx = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        return ctx.get_current_revision()
