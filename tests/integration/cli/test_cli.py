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


def _import_with_warnings(write_csv, count: int):
    rows = "".join(f"DE,N{i},N{i},n{i}@example.com,E{i},Nowhere\n" for i in range(count))
    return write_csv(f"{HEADER}\n{rows}")


def test_an_import_prints_its_warnings_the_first_20_then_a_count(engine, write_csv, capsys):
    assert main(["import", str(_import_with_warnings(write_csv, 23))]) == 0
    out = capsys.readouterr().out
    assert "warnings=23" in out
    assert "Rejected rows, duplicates and warnings (23):" in out
    assert out.count("segment 'Nowhere' does not exist") == 20
    assert "row  column    value    severity  reason" in out
    assert out.rstrip().endswith("... and 3 more (--report FILE writes them all)")


def test_import_phase_timings_go_to_the_log_not_stdout(engine, write_csv, capsys, caplog):
    caplog.set_level("INFO", logger="segmail.imports.pipeline")
    assert main(["-v", "import", str(_import_with_warnings(write_csv, 1))]) == 0
    assert "phases" not in capsys.readouterr().out
    assert any("phases (s)" in r.getMessage() for r in caplog.records if r.name == "segmail.imports.pipeline")


def test_imports_shows_why_a_file_was_rejected(engine, write_csv, capsys):
    assert main(["import", str(write_csv("a;b\n1;2\n", name="wrong.csv"))]) == 1
    capsys.readouterr()
    assert main(["imports"]) == 0
    header, _rule, row = capsys.readouterr().out.splitlines()[:3]
    assert header.split()[-2:] == ["finished_at", "error"]
    assert "wrong.csv" in row and "missing required column(s)" in row


def test_status_of_a_run_that_does_not_exist_is_an_error(engine, capsys):
    assert main(["status", "--run", "999"]) == 2
    assert capsys.readouterr().err == "error: no mailing run 999; `segmail status` lists the runs\n"
    assert main(["status", "--run", str(10**20)]) == 2


def test_an_export_of_an_unknown_segment_writes_nothing(engine, tmp_path, capsys):
    new, existing = tmp_path / "out.csv", tmp_path / "kept.csv"
    existing.write_text("keep me\n")
    for target in (new, existing):
        assert main(["contacts", "export", "--segment", "Unknown", "-o", str(target)]) == 2
        assert capsys.readouterr().err == "error: no segment named 'Unknown'\n"
    assert main(["contacts", "export", "--segment", "Unknown"]) == 2
    assert capsys.readouterr().out == ""
    assert not new.exists() and existing.read_text() == "keep me\n"
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".partial")]


def test_an_export_to_a_file_replaces_it_when_done(engine, tmp_path, capsys):
    target = tmp_path / "out.csv"
    target.write_text("old\n")
    assert main(["contacts", "export", "-o", str(target)]) == 0
    assert target.read_text().startswith("External ID,Email,")
    assert "0 contacts written to" in capsys.readouterr().err


def test_import_names_a_directory_or_a_pdf_precisely(engine, tmp_path, capsys):
    pdf = tmp_path / "contacts.pdf"
    pdf.write_bytes(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n")
    assert main(["import", str(pdf)]) == 1
    assert capsys.readouterr().err == "error: contacts.pdf is a PDF document, not a CSV file\n"
    xlsx = tmp_path / "contacts.xlsx"
    xlsx.write_bytes(b"PK\x03\x04\x14\x00\x06\x00")
    assert main(["import", str(xlsx)]) == 1
    assert "contacts.xlsx is a ZIP archive (an Excel .xlsx workbook is one" in capsys.readouterr().err
    assert main(["import", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (
        f"error: {tmp_path} is a directory, not a CSV file; give one file (the contacts_import DAG reads a whole inbox)\n"
    )
    assert main(["import", str(tmp_path / "missing.csv")]) == 2
    assert capsys.readouterr().err == f"error: no such file: {tmp_path / 'missing.csv'}\n"
    assert main(["imports", "--format", "json"]) == 0
    assert capsys.readouterr().out.strip() == "[]"  # none of them started an import run
