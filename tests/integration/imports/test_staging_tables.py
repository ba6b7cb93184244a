"""Where staged rows live: unlogged tables on PostgreSQL, temporary ones where the role may not
create tables (and on SQLite); either way made and dropped inside the import's transaction."""

from __future__ import annotations

from contacts_support import contact_rows
from segmail.imports import staging
from segmail.imports.pipeline import import_file
from sqlalchemy import inspect

HEADER = "Country Code,First Name,Last Name,Email,External ID"


def _leftovers(engine) -> list[str]:
    with engine.connect() as conn:
        found = inspect(conn)
        tables = [
            *found.get_table_names(),
            *(found.get_temp_table_names() if engine.dialect.name == "sqlite" else []),
        ]
    return [t for t in tables if t.startswith("segmail_stage")]


def test_a_role_that_may_not_create_tables_stages_in_temporary_ones(engine, write_csv, monkeypatch):
    made = []
    real = staging.new_table
    monkeypatch.setattr(staging, "_may_create", lambda conn: False)
    monkeypatch.setattr(staging, "new_table", lambda conn, table: made.append(real(conn, table)) or made[-1])
    result = import_file(write_csv(f"{HEADER}\nDE,A,A,a@example.com,E1\n"), engine=engine)
    assert (result.status, result.created) == ("succeeded", 1)
    assert made and all(sql.startswith("CREATE TEMPORARY TABLE") for sql in made)
    assert [c["external_id"] for c in contact_rows(engine)] == ["E1"]
    assert _leftovers(engine) == []


def test_staging_tables_are_unlogged_on_postgresql_and_gone_after_the_import(engine, write_csv):
    made = []
    with engine.connect() as conn:
        made.append(staging.new_table(conn, "x"))
    expected = "UNLOGGED" if engine.dialect.name == "postgresql" else "TEMPORARY"
    assert made == [f"CREATE {expected} TABLE x"]
    import_file(write_csv(f"{HEADER}\nDE,A,A,a@example.com,E1\n"), engine=engine)
    assert _leftovers(engine) == []
