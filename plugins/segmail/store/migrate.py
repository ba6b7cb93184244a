"""segmail's Alembic migrations, applied at deploy time (`segmail db upgrade`, `make demo`/`make airflow`,
the compose init service) and in tests. Tasks never migrate: they call `require_head()`, which fails
with a one-line instruction when the schema is not the one this code expects."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine

from segmail.errors import SegmailError
from segmail.store.db import default_engine

VERSION_TABLE = "segmail_alembic_version"
MIGRATIONS_DIR = Path(__file__).with_name("migrations")


class SchemaNotAtHead(SegmailError):
    """The database was not migrated to this code's schema: a deploy step was skipped."""


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def upgrade(engine: Engine | None = None, revision: str = "head") -> None:
    with _migrating(engine or default_engine()) as connection:
        command.upgrade(alembic_config(connection), revision)


def downgrade(engine: Engine | None = None, revision: str = "base") -> None:
    with _migrating(engine or default_engine()) as connection:
        command.downgrade(alembic_config(connection), revision)


@contextlib.contextmanager
def _migrating(engine: Engine) -> Iterator[Connection]:
    """One transaction for the whole migration. On SQLite, foreign keys are off while it runs:
    Alembic's batch mode rebuilds a table by dropping it, and with foreign keys on that drop
    would cascade into its child tables (a rebuilt mailing-runs table would empty the deliveries).
    The keys are checked before the transaction commits."""
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        raw = connection.connection.dbapi_connection
        if sqlite:
            raw.execute("PRAGMA foreign_keys=OFF")  # outside a transaction, or SQLite ignores it
        try:
            with connection.begin():
                yield connection
                if sqlite:
                    _check_foreign_keys(connection)
        finally:
            if sqlite:
                raw.execute("PRAGMA foreign_keys=ON")


def _check_foreign_keys(connection: Connection) -> None:
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise SegmailError(f"migration left {len(broken)} row(s) with broken foreign keys, e.g. {broken[0]}")


def current_revision(engine: Engine | None = None) -> str | None:
    from alembic.runtime.migration import MigrationContext

    engine = engine or default_engine()
    with engine.connect() as connection:
        ctx = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        return ctx.get_current_revision()


@cache
def head_revision() -> str:
    """The newest revision shipped with this code."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def require_head(engine: Engine | None = None) -> None:
    """Raise SchemaNotAtHead, naming both revisions and the fix, unless the schema is at head."""
    current, head = current_revision(engine), head_revision()
    if current != head:
        raise SchemaNotAtHead(
            f"segmail's database schema is at {current or 'no revision (empty database)'}, "
            f"expected {head}: run `segmail db upgrade`"
        )
