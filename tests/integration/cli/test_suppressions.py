"""`segmail suppressions list|add|remove` against SQLite and PostgreSQL: one-line errors, exit 2."""

from __future__ import annotations

import json

from segmail.cli.main import main


def test_add_list_and_remove(engine, capsys):
    assert main(["suppressions", "list"]) == 0
    assert capsys.readouterr().out.strip() == "(none)"
    assert main(["suppressions", "add", "Anna@Example.com", "--reason", "asked by phone"]) == 0
    assert main(["suppressions", "add", "bob@example.com"]) == 0
    assert main(["suppressions", "add", "ANNA@example.com", "--reason", "again"]) == 0
    assert "was already suppressed (kept as it was)" in capsys.readouterr().out

    assert main(["suppressions", "list"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["address", "reason", "source", "mailing_run_id", "created_at"]
    assert [line.split()[0] for line in table[2:]] == ["bob@example.com", "anna@example.com"]
    assert "asked by phone  manual" in table[3] and "added by hand" in table[2]

    assert main(["suppressions", "list", "--format", "json", "--limit", "1"]) == 0
    (newest,) = json.loads(capsys.readouterr().out)
    assert newest["address"] == "bob@example.com" and newest["source"] == "manual"
    assert newest["mailing_run_id"] is None and newest["created_at"]

    assert main(["suppressions", "remove", "BOB@example.com"]) == 0
    assert "bob@example.com removed from the suppression list" in capsys.readouterr().out.lower()
    assert main(["suppressions", "list", "--format", "json"]) == 0
    assert [r["address"] for r in json.loads(capsys.readouterr().out)] == ["anna@example.com"]


def test_mistakes_exit_2_with_one_line(engine, capsys):
    assert main(["suppressions", "remove", "nobody@example.com"]) == 2
    assert capsys.readouterr().err == "error: 'nobody@example.com' is not on the suppression list\n"
    assert main(["suppressions", "add", "not-an-address"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: 'not-an-address' is not an e-mail address") and err.count("\n") == 1
    assert main(["suppressions", "list", "--limit", "0"]) == 2
    assert capsys.readouterr().err == "error: --limit must be at least 1, not 0\n"
