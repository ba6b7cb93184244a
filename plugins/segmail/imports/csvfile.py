"""Reading contact files the way Excel and scripts write them: encoding, delimiter, header aliases.

Records are streamed in chunks, each record carrying the row number a spreadsheet would show
(header = row 1), so every rejection can point at the right row even across quoted line breaks.
The chunks travel as the file's own text (imports.textblocks) and are read as CSV where they are
validated.

The header rule: a header with a column that finds stored contacts (External ID, Email, or Country
Code with Mobile Number) may leave out every other column, so `External ID;Segmente` is a complete
file; whether a row that turns out to create a contact has what a new contact needs is checked row
by row after matching. A header without such a column can only create contacts, so it must have a
column of each group a new contact needs (Country Code, First Name, Last Name, Email or Mobile
Number); else the file is rejected whole, naming the missing columns.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from segmail.errors import FileRejected
from segmail.imports.columns import COLUMNS, DISPLAY_NAMES, KEY_COLUMNS, NEW_CONTACT_NEEDS
from segmail.imports.textblocks import CHARS_PER_RECORD, TextBlocks

_DELIMITERS = (",", ";", "\t")
# File signatures of what people drop instead of a CSV file, and what to call them.
_NOT_CSV = (
    (b"%PDF-", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (an Excel .xlsx workbook is one; save the sheet as CSV)"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an Excel 97-2003 workbook (save the sheet as CSV)"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
)


def not_a_csv_file(path: Path) -> str | None:
    """What `path` certainly is instead of a CSV file (a known binary format), else None."""
    with path.open("rb") as fh:
        head = fh.read(8)
    return next((name for magic, name in _NOT_CSV if head.startswith(magic)), None)


def header_key(text: str) -> str:
    """Case-insensitive, ignoring spaces, `_` and `-`: 'E-Mail', 'email', 'E_MAIL' all match."""
    text = unicodedata.normalize("NFC", text).casefold()
    return "".join(ch for ch in text if ch not in " _-\u00a0\ufeff")


_HEADER_TO_FIELD = {header_key(title): c.key for c in COLUMNS for title in c.headers}


def detect_encoding(path: Path) -> str:
    """UTF-8 (with or without BOM) when the whole file decodes as such, else Windows-1252 or a guess."""
    with path.open("rb") as fh:
        head = fh.read(4)
        if head.startswith(codecs.BOM_UTF8):
            return "utf-8-sig"
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return "utf-16"
        fh.seek(0)
        decoder = codecs.getincrementaldecoder("utf-8")()
        try:
            while block := fh.read(1 << 20):
                if b"\x00" in block:
                    raise FileRejected("the file is not a CSV text file (it contains binary data)")
                decoder.decode(block)
            decoder.decode(b"", final=True)
            return "utf-8"
        except UnicodeDecodeError:
            pass
    try:
        with path.open("r", encoding="cp1252", newline="") as fh:
            while fh.read(1 << 20):
                pass
        return "cp1252"
    except UnicodeDecodeError:
        from charset_normalizer import from_path

        best = from_path(path).best()
        if best is None:
            raise FileRejected("the file's text encoding could not be recognised") from None
        return best.encoding


def detect_delimiter(header_line: str) -> str:
    counts = {d: header_line.count(d) for d in _DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


@dataclass
class CsvLayout:
    """What the header told us: which column index feeds which field, and what was ignored."""

    encoding: str
    delimiter: str
    header: list[str]
    columns: dict[str, int]
    ignored: list[str] = field(default_factory=list)

    @property
    def has_segments(self) -> bool:
        return "segments" in self.columns


def map_header(header: list[str]) -> tuple[dict[str, int], list[str]]:
    columns: dict[str, int] = {}
    ignored: list[str] = []
    for index, title in enumerate(header):
        name = _HEADER_TO_FIELD.get(header_key(title))
        if name is None:
            if title.strip():
                ignored.append(title.strip())
            continue
        if name in columns:
            raise FileRejected(
                f"columns {header[columns[name]]!r} and {title!r} both mean {DISPLAY_NAMES[name]!r}"
            )
        columns[name] = index
    missing = missing_columns(columns)
    if missing:
        found = ", ".join(repr(h) for h in header) or "nothing"
        keys = ", ".join(" + ".join(DISPLAY_NAMES[name] for name in key) for key in KEY_COLUMNS)
        raise FileRejected(
            f"missing required column(s): {', '.join(missing)} (header has {found}); a file that only"
            f" updates stored contacts needs one of {keys} instead"
        )
    return columns, ignored


def missing_columns(columns: dict[str, int]) -> list[str]:
    """None when a column finds stored contacts; else the groups a new contact needs that are absent."""
    if any(all(name in columns for name in key) for key in KEY_COLUMNS):
        return []
    return [
        " or ".join(DISPLAY_NAMES[name] for name in group)
        for group in NEW_CONTACT_NEEDS
        if not any(name in columns for name in group)
    ]


def open_layout(path: Path) -> CsvLayout:
    if not path.is_file():
        raise FileRejected(f"no such file: {path}")
    if path.stat().st_size == 0:
        raise FileRejected("the file is empty")
    if kind := not_a_csv_file(path):
        raise FileRejected(f"the file is {kind}, not a CSV file")
    encoding = detect_encoding(path)
    with path.open("r", encoding=encoding, newline="") as fh:
        first_line = fh.readline()
        delimiter = detect_delimiter(first_line)
        fh.seek(0)
        try:
            header = next(csv.reader(fh, delimiter=delimiter))
        except (csv.Error, StopIteration) as exc:
            raise FileRejected(f"the header row cannot be read as CSV: {exc}") from exc
    columns, ignored = map_header(header)
    return CsvLayout(encoding, delimiter, header, columns, ignored)


@dataclass
class RawChunk:
    """Up to `size` records: row numbers and the cells of each mapped field (missing cells as '')."""

    line_numbers: list[int]
    cells: dict[str, list[str]]
    # Rows that are malformed as CSV records: (row number, reason).
    malformed: list[tuple[int, str]]


@dataclass
class RecordBatch:
    """Whole records, the first on spreadsheet row `first_row` and each on the next row (a quoted
    line break stays within its record). Either the file's text of `rows` records, read as CSV where
    it is validated (a worker), or records the csv module read already (a record it could not read
    is the reason, a string). Made a `RawChunk` by `to_chunk`."""

    first_row: int
    records: list[list[str] | str] = field(default_factory=list)
    text: str = ""
    rows: int = 0

    def read(self, delimiter: str) -> list[list[str] | str]:
        """The records, read from the text if need be."""
        if not self.text:
            return self.records
        lines = io.StringIO(self.text, newline="")
        records = list(_records(csv.reader(lines, delimiter=delimiter, strict=False)))
        if len(records) != self.rows:  # the reading process counted otherwise: rows would be misnumbered
            raise RuntimeError(f"read {len(records)} records from a block of {self.rows}")
        return records


def _records(reader: Iterator[list[str]]) -> Iterator[list[str] | str]:
    """The reader's records; one it cannot read becomes the reason, and reading goes on."""
    while True:
        try:
            yield from reader
            return
        except csv.Error as exc:
            yield f"not a valid CSV record: {exc}"


def iter_batches(path: Path, layout: CsvLayout, *, size: int = 20_000) -> Iterator[RecordBatch]:
    """The records after the header, about `size` a batch: blocks of the file's text, then, after
    a record the csv module cannot read (imports.textblocks), records read here."""
    with path.open("r", encoding=layout.encoding, newline="") as fh:
        next(csv.reader(fh, delimiter=layout.delimiter, strict=False))  # header
        blocks = TextBlocks(fh, layout.delimiter, chars=size * CHARS_PER_RECORD)
        first_row = 2
        for text, rows in blocks:
            yield RecordBatch(first_row, text=text, rows=rows)
            first_row += rows
        records = _records(csv.reader(blocks.rest(), delimiter=layout.delimiter, strict=False))
        while batch := list(itertools.islice(records, size)):
            yield RecordBatch(first_row, batch, rows=len(batch))
            first_row += len(batch)


def to_chunk(batch: RecordBatch, layout: CsvLayout) -> RawChunk:
    """Fully empty records (Excel's trailing `;;;;` rows) are skipped silently; a record with more
    non-empty cells than the header has columns is malformed; missing cells are empty."""
    records, width = batch.read(layout.delimiter), len(layout.header)
    if _all_full_width(records, width):
        return _full_width_chunk(records, batch.first_row, layout)
    lines: list[int] = []
    kept: list[list[str]] = []
    malformed: list[tuple[int, str]] = []
    for row, record in enumerate(records, batch.first_row):
        if isinstance(record, str):
            malformed.append((row, record))
        elif not "".join(record).strip():
            continue
        elif len(record) > width and "".join(record[width:]).strip():
            malformed.append((row, f"the row has {len(record)} cells but the header has {width}"))
        else:
            lines.append(row)
            kept.append(record if len(record) >= width else record + [""] * (width - len(record)))
    cells = {name: [record[index] for record in kept] for name, index in layout.columns.items()}
    return RawChunk(lines, cells, malformed)


def _all_full_width(records: list[list[str] | str], width: int) -> bool:
    """Every record was read and has as many cells as the header (the usual file)."""
    return bool(records) and set(map(type, records)) == {list} and set(map(len, records)) == {width}


def _full_width_chunk(records: list[list[str]], first_row: int, layout: CsvLayout) -> RawChunk:
    """`to_chunk` of records that all have the header's width, column by column."""
    lines = range(first_row, first_row + len(records))
    filled = list(map(bool, map(str.strip, map("".join, records))))
    if not all(filled):
        records, lines = list(itertools.compress(records, filled)), itertools.compress(lines, filled)
    columns = list(zip(*records, strict=True)) or [()] * len(layout.header)
    cells = {name: list(columns[index]) for name, index in layout.columns.items()}
    return RawChunk(list(lines), cells, [])


def iter_chunks(path: Path, layout: CsvLayout, *, size: int = 20_000) -> Iterator[RawChunk]:
    """Stream records as chunks of checked-shape cells (see `to_chunk`)."""
    for batch in iter_batches(path, layout, size=size):
        chunk = to_chunk(batch, layout)
        if chunk.line_numbers or chunk.malformed:
            yield chunk
