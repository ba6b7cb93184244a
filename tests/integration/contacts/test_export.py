"""Contact export (CSV and JSON) against SQLite and PostgreSQL: what it writes imports back unchanged."""

from __future__ import annotations

import csv
import io
import json

import pytest
from contacts_support import contact_rows, create_segments
from segmail.contacts import export
from segmail.imports.columns import COLUMNS
from segmail.imports.pipeline import import_file

HEADER = "Country Code,First Name,Last Name,Email,Mobile Number,External ID,Segments,Language"


@pytest.fixture
def segments(engine):
    create_segments(engine)


def test_exported_csv_imports_back_without_changes(engine, segments, write_csv, tmp_path):
    import_file(
        write_csv(
            f"{HEADER},Organization,Email Opt Out\n"
            'DE,Anna,Müller,anna@example.com,0151 23456789,E1,VIP; Newsletter,de-AT,"=Evil, ""Inc""",\n'
            "US,Bob,Smith,,+1 415 555 2671,,Service Plan,en,Acme,yes\n"
        ),
        engine=engine,
    )
    out = io.StringIO()
    assert export.export_contacts(out, engine=engine) == 2
    assert out.getvalue().splitlines()[0] == ",".join(c.display for c in COLUMNS)
    exported = tmp_path / "export.csv"
    exported.write_text(out.getvalue(), encoding="utf-8")
    before = contact_rows(engine)
    for mode in ("merge", "replace"):
        result = import_file(exported, mode=mode, engine=engine)
        assert (result.unchanged, result.updated, result.rejected, result.warnings) == (2, 0, 0, 0)
    assert contact_rows(engine) == before


def test_one_segment_export_and_json(engine, segments, write_csv):
    import_file(
        write_csv(f"{HEADER}\nDE,A,A,a@example.com,,E1,VIP,\nDE,B,B,b@example.com,,E2,,\n"), engine=engine
    )
    out = io.StringIO()
    assert export.export_contacts(out, fmt="json", segment="vip", engine=engine) == 1
    (record,) = json.loads(out.getvalue())
    assert (record["external_id"], record["segments"], record["email_opt_out"]) == ("E1", ["VIP"], False)
    assert list(record) == [c.key for c in COLUMNS if c.key != "segments"] + ["segments"]


def test_columns_cut_from_an_export_import_back_without_changes(engine, segments, write_csv, tmp_path):
    """Partial updates (GUIDE §2): any export columns that include one to find the contacts by."""
    import_file(
        write_csv(
            f"{HEADER},Organization\n"
            "DE,Anna,Müller,anna@example.com,0151 23456789,E1,VIP; Newsletter,de-AT,Acme\n"
            "US,Bob,Smith,,+1 415 555 2671,,Service Plan,en,\n"
        ),
        engine=engine,
    )
    out = io.StringIO()
    export.export_contacts(out, engine=engine)
    records = list(csv.DictReader(io.StringIO(out.getvalue())))
    before = contact_rows(engine)
    # Bob has no external ID: cut to it and his segments, his row would create a contact (rejected);
    # cut to e-mail and organisation, his row is empty and skipped.
    cuts = {
        ("External ID", "Segments"): 1,
        ("Email", "Organization"): 0,
        ("Country Code", "Mobile Number", "Segments"): 0,
    }
    for keep, rejected in cuts.items():
        partial = tmp_path / f"{'-'.join(keep)}.csv"
        with partial.open("w", encoding="utf-8", newline="") as fh:
            writer = csv.DictWriter(fh, keep, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(records)
        for mode in ("merge", "replace"):
            result = import_file(partial, mode=mode, engine=engine)
            outcome = (result.status, result.updated, result.created, result.rejected, result.warnings)
            assert outcome == ("succeeded", 0, 0, rejected, 0), (keep, mode)
    assert contact_rows(engine) == before
