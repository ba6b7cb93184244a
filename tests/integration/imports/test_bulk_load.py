"""A bulk load builds the table's indexes afterwards (imports.bulkload): into an empty table, or into
one holding fewer than twice as many rows as the import writes. The same indexes and constraints
come back, the data is what a row-by-row load gives, and a failed import leaves the tables as they
were."""

from __future__ import annotations

import pytest
from contacts_support import contact_rows, create_segments, segments_of
from segmail.imports import apply, bulkload
from segmail.imports.pipeline import import_file
from sqlalchemy import inspect

HEADER = "Country Code,First Name,Last Name,Email,Mobile Number,External ID,Segments"
ROWS = (
    "DE,Anna,A,anna@example.com,0151 23456789,E1,VIP; Newsletter\n"
    "US,Bob,B,bob@example.com,,E2,Newsletter\n"
    "FR,Chloé,C,,06 12 34 56 78,,\n"
)


def schema(engine) -> dict:
    """Indexes, primary keys and unique constraints of the tables a bulk load rebuilds."""
    with engine.connect() as conn:
        found = inspect(conn)
        return {
            table: (
                sorted(
                    (i["name"], tuple(i["column_names"]), bool(i["unique"])) for i in found.get_indexes(table)
                ),
                found.get_pk_constraint(table)["constrained_columns"],
                sorted(tuple(u["column_names"]) for u in found.get_unique_constraints(table)),
            )
            for table in ("segmail_contacts", "segmail_memberships")
        }


@pytest.fixture
def bulk(monkeypatch):
    """Every load into an empty table counts as a bulk load."""
    monkeypatch.setattr(bulkload, "MIN_ROWS", 1)


def test_a_first_bulk_load_rebuilds_the_same_indexes_and_loads_the_same_data(engine, write_csv, bulk):
    create_segments(engine)
    before = schema(engine)
    result = import_file(write_csv(f"{HEADER}\n{ROWS}"), engine=engine)
    assert (result.created, result.rejected) == (3, 0)
    assert schema(engine) == before
    assert [c["mobile_e164"] for c in contact_rows(engine)] == ["+4915123456789", None, "+33612345678"]
    assert segments_of(engine)["E1"] == ["Newsletter", "VIP"]

    again = import_file(write_csv(f"{HEADER}\n{ROWS}", name="again.csv"), engine=engine)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 3)
    assert schema(engine) == before


def test_a_failed_bulk_load_leaves_tables_and_indexes_as_they_were(engine, write_csv, bulk, monkeypatch):
    create_segments(engine)
    before = schema(engine)

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(apply, "apply_memberships", boom)  # after the contacts' bulk load
    with pytest.raises(RuntimeError, match="disk full"):
        import_file(write_csv(f"{HEADER}\n{ROWS}"), engine=engine)
    assert contact_rows(engine) == []
    assert schema(engine) == before


def spy_on_rebuilds(monkeypatch) -> list[str]:
    """The tables whose indexes bulkload drops and builds again (it still does)."""
    rebuilt: list[str] = []
    for name in ("_sqlite_indexes", "_postgres_indexes"):
        real = getattr(bulkload, name)

        def spy(conn, table, real=real):
            rebuilt.append(table)
            return real(conn, table)

        monkeypatch.setattr(bulkload, name, spy)
    return rebuilt


def test_a_table_holding_twice_the_rows_written_keeps_its_indexes(engine, write_csv, bulk, monkeypatch):
    create_segments(engine)
    held = "".join(f"DE,N{i},N,n{i}@example.com,,N{i},Newsletter\n" for i in range(6))
    import_file(write_csv(f"{HEADER}\n{held}"), engine=engine)
    rebuilt = spy_on_rebuilds(monkeypatch)
    result = import_file(write_csv(f"{HEADER}\n{ROWS}", name="more.csv"), engine=engine)
    assert (result.created, result.updated) == (3, 0)
    assert rebuilt == []  # 6 contacts and 6 memberships held; 3 contacts and 3 memberships written


def test_a_re_import_adding_many_memberships_rebuilds_their_indexes(engine, write_csv, bulk, monkeypatch):
    """1 membership held, 3 written (a segment added to every contact): built afterwards, intact."""
    create_segments(engine)
    before = schema(engine)
    first = (
        "DE,Anna,A,anna@example.com,,E1,VIP\nUS,Bob,B,bob@example.com,,E2,\nFR,Chloé,C,c@example.com,,E3,\n"
    )
    import_file(write_csv(f"{HEADER}\n{first}"), engine=engine)
    rebuilt = spy_on_rebuilds(monkeypatch)
    again = first.replace(",VIP\n", ",VIP; Newsletter\n").replace(",\n", ",Newsletter\n")
    result = import_file(write_csv(f"{HEADER}\n{again}", name="again.csv"), engine=engine)
    assert (result.created, result.updated) == (0, 3)
    assert rebuilt == ["segmail_memberships"]  # the contacts table was only updated
    assert schema(engine) == before
    assert segments_of(engine) == {"E1": ["Newsletter", "VIP"], "E2": ["Newsletter"], "E3": ["Newsletter"]}
