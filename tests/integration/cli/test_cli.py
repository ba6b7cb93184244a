"""The `segmail` command end to end: exit codes, one-line errors, against SQLite and PostgreSQL."""

from __future__ import annotations

from segmail.cli.main import main

HEADER = "Country Code,First Name,Last Name,Email,External ID,Segments"


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
