"""Engine and session factory: the one place that knows SQLite needs WAL and a busy timeout."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from functools import cache

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from segmail.settings import database_url


def _lower(value: object) -> object:
    """SQL LOWER on SQLite as PostgreSQL's: every letter, not only ASCII ones; NULL stays NULL."""
    return value.lower() if isinstance(value, str) else value


def make_engine(url: str | None = None, *, read_only: bool = False) -> Engine:
    """`read_only` (pages, read commands): on SQLite a deferred BEGIN that never takes the write lock,
    so a page answers while an import holds it (WAL readers see the last commit), and query_only on."""
    url = url or database_url()
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 60})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: sqlite3.Connection, _record: object) -> None:
            # Let SQLAlchemy own transactions, so BEGIN IMMEDIATE below takes the write lock up front.
            dbapi_conn.isolation_level = None
            # SQLite's own LOWER only knows ASCII; address keys are Python's lower() (addresses.email_key).
            dbapi_conn.create_function("lower", 1, _lower, deterministic=True)
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=60000")
            cur.execute("PRAGMA cache_size=-32000")
            if read_only:
                cur.execute("PRAGMA query_only=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

        return engine
    if read_only:
        return create_engine(
            url, pool_pre_ping=True, connect_args={"options": "-c default_transaction_read_only=on"}
        )
    return create_engine(url, pool_pre_ping=True)


@cache
def default_engine() -> Engine:
    return make_engine()


def read_only_engine() -> Engine:
    """The engine of the monitoring pages: reads never wait for, nor block, an import or a send.
    Keyed by the default engine's URL, so it follows that engine wherever it is rebuilt."""
    return _read_only_engine(default_engine().url.render_as_string(hide_password=False))


@cache
def _read_only_engine(url: str) -> Engine:
    return make_engine(url, read_only=True)


def session_factory(engine: Engine | None = None) -> sessionmaker[Session]:
    return sessionmaker(bind=engine or default_engine(), expire_on_commit=False)


@contextlib.contextmanager
def session_scope(engine: Engine | None = None) -> Iterator[Session]:
    """One transaction: committed when the block ends, rolled back on any error."""
    with session_factory(engine)() as session, session.begin():
        yield session


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def bulk_insert(conn: Connection, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
    """Many rows in one round: COPY on PostgreSQL, executemany on SQLite. Names are ours, never input."""
    if not rows:
        return
    if is_postgres(conn.engine):
        cursor = conn.connection.dbapi_connection.cursor()
        with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    marks = ", ".join("?" for _ in columns)
    conn.exec_driver_sql(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)
