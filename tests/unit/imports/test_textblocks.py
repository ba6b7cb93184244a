"""Blocks of file text cut without reading CSV hold exactly the records, and row numbers, that the
csv module reads from the whole file, wherever the blocks end."""

from __future__ import annotations

import csv
import random

import pytest
from segmail.imports.csvfile import CsvLayout, RecordBatch, iter_batches

# Pieces of text that make records hard to cut: quoted line breaks, escaped quotes, quotes that
# do not open a quoted field, every kind of line end, empty rows, unreadable records (NUL).
PIECES = (
    "a",
    "b,c",
    '"x\ny"',
    '"q""r"',
    '5" tv',
    '"ab"cd',
    "",
    " ",
    "\r",
    "\n",
    "\r\n",
    ",",
    '"',
    '""',
    "é",
    '"\r\n"',
    "\x00",
    "z" * 50,
)
LAYOUT = CsvLayout("utf-8", ",", ["h1", "h2"], {})


def _whole_file(path) -> list:
    """The records as the csv module reads the whole file (one it cannot read: its reason)."""
    records = []
    with path.open("r", encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh, strict=False)
        next(reader)
        while True:
            try:
                records.extend(reader)
                return records
            except csv.Error as exc:
                records.append(f"not a valid CSV record: {exc}")


def _in_batches(path, size: int) -> list:
    records, row = [], 2
    for batch in iter_batches(path, LAYOUT, size=size):
        assert batch.first_row == row
        read = batch.read(LAYOUT.delimiter)
        records += read
        row += len(read)
    return records


@pytest.mark.parametrize("seed", range(40))
def test_blocks_hold_the_records_the_csv_module_reads(tmp_path, seed):
    rng = random.Random(seed)
    path = tmp_path / "x.csv"
    for _ in range(10):
        body = "".join(rng.choice(PIECES) for _ in range(rng.randrange(1, 200)))
        path.write_text("h1,h2\n" + body, encoding="utf-8", newline="")
        expected = _whole_file(path)
        for size in (1, 3, 100):  # blocks of about 128, 384 and 12,800 characters
            assert _in_batches(path, size) == expected, (body, size)


def test_a_field_too_large_for_the_csv_module_is_reported_in_its_row(tmp_path):
    limit = csv.field_size_limit()
    path = tmp_path / "x.csv"
    path.write_text('h1,h2\na,b\n"' + "y" * 300 + '\nz",c\nd,e\n' + "w" * 300 + "\nf,g\n", newline="")
    try:
        csv.field_size_limit(100)
        expected = _whole_file(path)
        assert _in_batches(path, 1) == expected
    finally:
        csv.field_size_limit(limit)
    assert any(isinstance(record, str) for record in expected)


def test_a_block_read_elsewhere_must_hold_the_records_counted():
    with pytest.raises(RuntimeError, match="read 2 records from a block of 3"):
        RecordBatch(2, text="a,b\nc,d\n", rows=3).read(",")
