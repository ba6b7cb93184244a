"""Segments, salespeople, opt-outs and the `segmail` command, against SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from segmail.cli.main import main
from segmail.contacts import salespeople, segments
from segmail.errors import AlreadyExists, NotFound, SegmailError
from segmail.imports.pipeline import import_file
from segmail.orchestration import admin_actions
from segmail.store import migrate
from sqlalchemy import text

HEADER = "Country Code,First Name,Last Name,Email,External ID,Segments"


def count(engine, table: str) -> int:
    with engine.connect() as conn:
        return conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one()


def test_segment_lifecycle_keeps_contacts(engine, write_csv):
    salespeople.add_salesperson(code="jd", name="Jane Doe", email="jane@example.com", engine=engine)
    segments.create_segment(name="Region North", salesperson="JD", description="dealers", engine=engine)
    with pytest.raises(AlreadyExists):
        segments.create_segment(name="region north", engine=engine)
    import_file(
        write_csv(f"{HEADER}\nDE,A,A,a@example.com,E1,Region North\nDE,B,B,b@example.com,E2,\n"),
        engine=engine,
    )
    segments.rename_segment(old="Region North", new="North", engine=engine)
    assert segments.list_segments(engine=engine) == [
        {"name": "North", "salesperson": "JD", "description": "dealers", "members": 1}
    ]

    result = segments.assign_segment(
        name="north", keys=["E2", "A@EXAMPLE.COM", "missing@example.com"], engine=engine
    )
    assert (result.matched, result.changed, result.not_found) == (2, 1, ["missing@example.com"])
    result = segments.assign_segment(name="North", keys=["E1"], remove=True, engine=engine)
    assert (result.matched, result.changed) == (1, 1)

    assert segments.delete_segment(name="North", engine=engine) == 1
    assert count(engine, "segmail_contacts") == 2
    assert count(engine, "segmail_memberships") == 0


@pytest.mark.parametrize(
    ("call", "error"),
    [
        pytest.param(
            lambda e: segments.create_segment(name="A;B", engine=e), SegmailError, id="separator-in-name"
        ),
        pytest.param(
            lambda e: segments.create_segment(name="X", salesperson="NOPE", engine=e),
            NotFound,
            id="unknown-salesperson",
        ),
        pytest.param(
            lambda e: segments.delete_segment(name="ghost", engine=e), NotFound, id="unknown-segment"
        ),
        pytest.param(
            lambda e: salespeople.add_salesperson(code="X", name="X", email="not-an-address", engine=e),
            SegmailError,
            id="bad-salesperson-email",
        ),
        pytest.param(
            lambda e: admin_actions.run_action(action="rename_segment", segment="a", engine=e),
            SegmailError,
            id="form-missing-field",
        ),
    ],
)
def test_mistakes_raise_clear_errors_and_change_nothing(engine, call, error):
    with pytest.raises(error):
        call(engine)
    assert count(engine, "segmail_segments") == 0


def test_cli_end_to_end(engine, write_csv, tmp_path, capsys):
    assert main(["db", "upgrade"]) == 0
    assert main(["salespeople", "add", "jd", "--name", "Jane", "--email", "jane@example.com"]) == 0
    assert main(["segments", "create", "VIP", "--salesperson", "JD"]) == 0
    path = write_csv(f"{HEADER}\nDE,A,A,a@example.com,E1,VIP\n+1,B,B,b@example.com,E2,VIP\n")
    report = tmp_path / "r.csv"
    assert main(["import", str(path), "--mode", "replace", "--report", str(report)]) == 0
    out = capsys.readouterr().out
    assert "rows=2  created=1  updated=0  unchanged=0  rejected=1" in out
    assert report.is_file()
    assert main(["segments", "list"]) == 0
    assert "VIP   JD           1" in capsys.readouterr().out
    keys = tmp_path / "keys.txt"
    keys.write_text("Email\na@example.com\n")
    assert main(["segments", "unassign", "VIP", "--file", str(keys)]) == 0
    assert "1 contacts matched; 1 removed from 'VIP'" in capsys.readouterr().out
    assert main(["contacts", "opt-out", "E1"]) == 0
    assert main(["contacts", "export", "--format", "json"]) == 0
    assert '"email_opt_out": true' in capsys.readouterr().out
    assert main(["contacts", "opt-in", "a@example.com"]) == 0


def test_cli_user_mistakes_exit_non_zero_with_one_line(engine, write_csv, capsys):
    assert main(["segments", "create", "VIP"]) == 0
    assert main(["segments", "create", "vip"]) == 2
    assert capsys.readouterr().err.strip() == "error: segment 'vip' already exists"
    assert main(["import", str(write_csv("a;b\n1;2\n"))]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: contacts.csv rejected: missing required column(s)")
    assert "\n" not in err
    assert main(["contacts", "opt-out", "nobody@example.com"]) == 2


def test_cli_on_a_database_that_is_not_set_up(tmp_path, monkeypatch, capsys):
    from segmail.store.db import default_engine

    monkeypatch.setenv("SEGMAIL_DB_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    default_engine.cache_clear()
    try:
        assert main(["segments", "list"]) == 2
        assert "run `segmail db upgrade`" in capsys.readouterr().err
    finally:
        default_engine.cache_clear()


def test_migrations_go_down_and_up_again(engine):
    assert migrate.current_revision(engine) == "0002"
    migrate.downgrade(engine, "base")
    assert migrate.current_revision(engine) is None
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == "0002"
    assert count(engine, "segmail_contacts") == 0


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
