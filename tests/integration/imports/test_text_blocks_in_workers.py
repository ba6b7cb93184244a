"""A file cut into many small text blocks and read in worker processes imports exactly as one
read whole: every row lands or is rejected with the row number a spreadsheet shows, even when
quoted line breaks fall on the edges of blocks."""

from __future__ import annotations

from contacts_support import contact_rows, issues
from segmail.imports.pipeline import import_file

HEADER = "Country Code,First Name,Last Name,Email,External ID,Organization"


def _file(rows: int) -> tuple[str, set[int], int, int]:
    """The file's text, the spreadsheet rows that are rejected, how many contacts land and how
    many rows are empty."""
    lines, rejected, landing, empty = [HEADER], set(), 0, 0
    for i in range(rows):
        row = i + 2  # header = row 1; a quoted line break stays within its row
        if i % 7 == 3:
            lines.append(f'DE,Ann,Lee,a{i}@example.com,E{i},"Line 1\nLine 2, ""quoted"""')
        elif i % 11 == 5:
            lines.append(f"DE,,Lee,a{i}@example.com,E{i},")  # a new contact needs a first name
            rejected.add(row)
            continue
        elif i % 13 == 6:
            lines.append(",,,,,")  # an empty row: skipped silently
            empty += 1
            continue
        elif i % 17 == 8:
            lines.append(f"DE,Ann,Lee,a{i}@example.com,E{i},Org,extra")  # more cells than the header
            rejected.add(row)
            continue
        else:
            lines.append(f"DE,Ann,Lee,a{i}@example.com,E{i},Org {i}")
        landing += 1
    return "\n".join(lines) + "\n", rejected, landing, empty


def test_small_blocks_in_workers_keep_every_row_and_its_number(engine, write_csv, monkeypatch):
    monkeypatch.setenv("SEGMAIL_IMPORT_WORKERS", "2")
    text, rejected, landing, empty = _file(400)
    path = write_csv(text)
    result = import_file(path, engine=engine, chunk_size=2)  # blocks of about 256 characters

    assert (result.status, result.rows, result.created, result.rejected) == (
        "succeeded",
        400 - empty,
        landing,
        len(rejected),
    )
    assert {line for line, _, severity, _ in issues(engine, result.import_run_id) if severity == "error"} == (
        rejected
    )
    organizations = {c["external_id"]: c["organization"] for c in contact_rows(engine)}
    assert organizations["E3"] == 'Line 1\r\nLine 2, "quoted"'
    assert organizations["E398"] == "Org 398"
