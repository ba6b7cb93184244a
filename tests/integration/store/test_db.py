"""The read-only engine of the monitoring pages: it answers while a writer holds the database, and
cannot write."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from segmail.store.db import make_engine, read_only_engine


def test_pages_read_while_an_import_holds_the_sqlite_write_lock(tmp_path):
    from segmail.store.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'segmail.db'}"
    writer = make_engine(url)
    upgrade(writer)
    reader = make_engine(url, read_only=True)
    answered: list[int] = []
    with writer.begin() as conn:  # BEGIN IMMEDIATE: the write lock, as an import holds it
        conn.execute(
            sa.text(
                "INSERT INTO segmail_segments (name, name_key, created_at) VALUES ('Held', 'held', CURRENT_TIMESTAMP)"
            )
        )
        thread = threading.Thread(
            target=lambda: answered.append(
                reader.connect().execute(sa.text("SELECT count(*) FROM segmail_segments")).scalar_one()
            )
        )
        thread.start()
        thread.join(timeout=10)
        assert answered == [0], "the page waited for the writer (or saw its uncommitted row)"
    writer.dispose()
    reader.dispose()


def test_the_read_only_engine_refuses_writes(engine):
    with pytest.raises(sa.exc.DBAPIError, match="read-?only"), read_only_engine().begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO segmail_segments (name, name_key, created_at) VALUES ('Nope', 'nope', CURRENT_TIMESTAMP)"
            )
        )
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM segmail_segments")).scalar_one() == 0
