"""Memberships have no foreign keys (migration 0006): no membership without its contact and its
segment can appear, whatever imports and segment deletes do, in any order, on SQLite and
PostgreSQL (where they can run at the same time)."""

from __future__ import annotations

import threading

import pytest
from contacts_support import count, create_segments, issues, segments_of
from segmail.contacts import segments
from segmail.imports import apply
from segmail.imports.pipeline import import_file
from sqlalchemy import inspect, text

HEADER = "Country Code,First Name,Last Name,Email,External ID,Segments"
ORPHANS = (
    "SELECT COUNT(*) FROM segmail_memberships m"
    " WHERE NOT EXISTS (SELECT 1 FROM segmail_contacts c WHERE c.id = m.contact_id)"
    " OR NOT EXISTS (SELECT 1 FROM segmail_segments g WHERE g.id = m.segment_id)"
)


def orphans(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text(ORPHANS)).scalar_one()


@pytest.fixture
def segmented(engine):
    create_segments(engine)


def test_memberships_have_no_foreign_keys_and_contacts_leave_room_for_updates(engine):
    with engine.connect() as conn:
        assert inspect(conn).get_foreign_keys("segmail_memberships") == []
        if engine.dialect.name == "postgresql":
            options = conn.execute(
                text("SELECT reloptions FROM pg_class WHERE oid = CAST('segmail_contacts' AS regclass)")
            ).scalar_one()
            assert options == ["fillfactor=50"]


def test_no_import_leaves_an_orphan(engine, segmented, write_csv):
    """Merge, replace, conflicts, duplicates, unknown segments and rejected rows, one after the other."""
    files = [
        ("merge", "DE,A,A,a@example.com,E1,VIP; Newsletter\nDE,B,B,b@example.com,E2,Nope; VIP\n"),
        (
            "merge",
            "DE,A,A,a@example.com,E1,Service Plan\nDE,C,C,c@example.com,,VIP\nDE,C,X,c@example.com,,Newsletter\n",
        ),
        ("replace", "DE,A,A,a@example.com,E1,VIP\nDE,B,B,a@example.com,E2,Newsletter\n,,,,E9,VIP\n"),
        ("replace", "DE,B,B,b@example.com,E2,\nDE,D,D,d@example.com,E1,Newsletter; Nope\n"),
    ]
    for i, (mode, rows) in enumerate(files):
        import_file(write_csv(f"{HEADER}\n{rows}", name=f"{i}.csv"), engine=engine, mode=mode)
        assert orphans(engine) == 0
    segments.delete_segment(name="Newsletter", engine=engine)
    assert orphans(engine) == 0
    assert segments_of(engine) == {"E1": [], "E2": [], "c@example.com": []}


def test_memberships_left_behind_are_not_inherited_by_new_contacts(engine, segmented, write_csv):
    import_file(write_csv(f"{HEADER}\nDE,A,A,a@example.com,E1,VIP\n"), engine=engine)
    with engine.begin() as conn:  # contact #2 deleted by hand, its membership (2, VIP) left behind
        vip = conn.execute(text("SELECT id FROM segmail_segments WHERE name_key = 'vip'")).scalar_one()
        conn.execute(text("DELETE FROM segmail_contacts"))
        conn.execute(text("INSERT INTO segmail_memberships VALUES (3, :vip)"), {"vip": vip})
    import_file(write_csv(f"{HEADER}\nDE,B,B,b@example.com,E2,Newsletter\n", name="2.csv"), engine=engine)
    assert segments_of(engine) == {"E2": ["Newsletter"]}
    assert orphans(engine) == 0


# Imports and segment deletes run at the same time only on PostgreSQL (SQLite has one writer).
ON_POSTGRES_ONLY = pytest.mark.parametrize(
    "db_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


@pytest.fixture
def postgres(engine):
    assert engine.dialect.name == "postgresql"
    return engine


def _paused_import(
    monkeypatch, engine, path
) -> tuple[threading.Thread, threading.Event, threading.Event, dict]:
    """An import in a thread that stops, its memberships written but not committed, until resumed."""
    written, resume, out = threading.Event(), threading.Event(), {}
    real = apply.apply_memberships

    def apply_then_wait(*args, **kwargs):
        real(*args, **kwargs)
        written.set()
        assert resume.wait(30)

    monkeypatch.setattr(apply, "apply_memberships", apply_then_wait)
    thread = threading.Thread(target=lambda: out.setdefault("result", import_file(path, engine=engine)))
    thread.start()
    return thread, written, resume, out


@ON_POSTGRES_ONLY
def test_a_segment_delete_waits_for_the_import_and_removes_what_it_added(
    postgres, segmented, write_csv, monkeypatch
):
    path = write_csv(f"{HEADER}\nDE,A,A,a@example.com,E1,VIP; Newsletter\nDE,B,B,b@example.com,E2,VIP\n")
    importing, written, resume, _ = _paused_import(monkeypatch, postgres, path)
    assert written.wait(30)
    deleted = {}
    deleting = threading.Thread(target=lambda: deleted.setdefault("n", segments.delete_segment(name="VIP")))
    deleting.start()
    deleting.join(1.0)
    assert deleting.is_alive()  # waiting for the import's lock on the segment
    resume.set()
    importing.join(30)
    deleting.join(30)
    assert deleted["n"] == 2  # the memberships the import had just added
    assert orphans(postgres) == 0
    assert segments_of(postgres) == {"E1": ["Newsletter"], "E2": []}


@ON_POSTGRES_ONLY
def test_an_import_waits_for_a_segment_delete_and_warns_that_the_segment_is_gone(
    postgres, segmented, write_csv
):
    path = write_csv(f"{HEADER}\nDE,A,A,a@example.com,E1,VIP; Newsletter\n")
    with postgres.connect() as deleting:
        transaction = deleting.begin()
        deleting.execute(text("DELETE FROM segmail_segments WHERE name_key = 'vip'"))  # not committed yet
        out = {}
        importing = threading.Thread(
            target=lambda: out.setdefault("result", import_file(path, engine=postgres))
        )
        importing.start()
        importing.join(1.0)
        assert importing.is_alive()  # waiting for the delete to end
        transaction.commit()
    importing.join(30)
    result = out["result"]
    assert (result.status, result.created, result.warnings) == ("succeeded", 1, 1)
    assert "'VIP' does not exist" in issues(postgres, result.import_run_id)[0][3]
    assert orphans(postgres) == 0
    assert segments_of(postgres) == {"E1": ["Newsletter"]}
    assert count(postgres, "segmail_memberships") == 1
