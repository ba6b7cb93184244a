"""Migrations down and up again, and where the database URL comes from."""

from __future__ import annotations

import pytest
from contacts_support import count
from segmail.store import migrate


def test_migrations_go_down_and_up_again(engine):
    head = migrate.current_revision(engine)  # the fixture migrated to head
    assert head is not None
    migrate.downgrade(engine, "base")
    assert migrate.current_revision(engine) is None
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == head
    assert count(engine, "segmail_contacts") == 0


def test_upgrading_a_database_with_sent_mails_keeps_every_row(newsletter_audience):
    """Rebuilding a parent table (batch mode on SQLite) must not cascade into its children."""
    from segmail.mailings.audience import freeze_audience
    from segmail.mailings.definition import get_mailing

    engine = newsletter_audience
    freeze_audience(get_mailing("newsletter"), dag_run_id="before-upgrade", engine=engine)
    before = {table: count(engine, table) for table in ("segmail_mailing_runs", "segmail_deliveries")}
    assert before["segmail_deliveries"] == 7  # the 7 contacts of the Newsletter segment
    migrate.downgrade(engine, "0003")
    migrate.upgrade(engine)
    assert {table: count(engine, table) for table in before} == before


def test_database_url_resolution(monkeypatch, tmp_path):
    from segmail.settings import database_url

    monkeypatch.delenv("SEGMAIL_DB_URL", raising=False)
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    monkeypatch.setenv("AIRFLOW_CONN_SEGMAIL_DB", "postgres://u:p@db:5432/segmail")
    assert database_url() == "postgresql+psycopg://u:p@db:5432/segmail"
    monkeypatch.delenv("AIRFLOW_CONN_SEGMAIL_DB")
    assert database_url() == f"sqlite:///{tmp_path / 'segmail.db'}"
    monkeypatch.setenv("SEGMAIL_DB_URL", "sqlite:////x.db")
    assert database_url() == "sqlite:////x.db"


def test_models_and_migrations_agree(engine):
    """What the migrations build is what the models declare (no forgotten column, index or constraint)."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from segmail.store.models import Base

    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": migrate.VERSION_TABLE})
        assert compare_metadata(context, Base.metadata) == []


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
@pytest.mark.postgres
def test_matching_keys_compare_bytes_on_postgres(engine):
    """The collation the models give a column on PostgreSQL is the migrated column's (alembic's
    comparison above does not look at collations)."""
    from segmail.store.models import Base
    from sqlalchemy import text

    declared = {
        (table.name, column.name): variant.collation
        for table in Base.metadata.tables.values()
        for column in table.columns
        if (variant := getattr(column.type, "_variant_mapping", {}).get("postgresql")) is not None
        and getattr(variant, "collation", None)
    }
    assert set(declared) >= {
        ("segmail_contacts", "external_id"),
        ("segmail_contacts", "email_key"),
        ("segmail_contacts", "mobile_e164"),
    }
    with engine.connect() as conn:
        migrated = {
            (table, column): collation
            for table, column, collation in conn.execute(
                text(
                    "SELECT table_name, column_name, collation_name FROM information_schema.columns"
                    " WHERE table_name LIKE 'segmail_%' AND collation_name IS NOT NULL"
                )
            )
        }
    assert {key: migrated.get(key) for key in declared} == declared
