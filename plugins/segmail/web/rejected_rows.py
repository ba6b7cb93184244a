"""An import's rejected rows as the user sent them, plus a Reason column, ready to fix and re-import.

Issues keep the row number, column and value, not whole rows, so the rows are read back from the
imported file: an inbox import keeps it in archive/ beside its `.report.csv` (the run's
report_path), local or on any Airflow object storage. The file is used only when its SHA-256 is the
one the import recorded. Rows are counted as the import counts them (header = row 1, a quoted line
break stays within its row), written with the file's delimiter, UTF-8 with BOM and spreadsheet-safe
cells, which the import reads back unchanged. The import ignores the extra Reason column; a file that
already has one (a fixed rejected-rows file) gets it overwritten, not doubled.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from segmail.spreadsheet import spreadsheet_safe

REPORT_SUFFIX = ".report.csv"
REASON = "Reason"


class OriginalUnavailable(Exception):
    """The imported file cannot be read back (an import from the command line, or a moved archive)."""


def kept_a_copy(import_run: dict) -> bool:
    """Whether the import came through the inbox, which archives the file beside its report."""
    return (import_run.get("report_path") or "").endswith(REPORT_SUFFIX)


def archived_file(import_run: dict) -> str:
    """Where the inbox archived the imported file: its report path without `.report.csv`."""
    report = import_run.get("report_path") or ""
    if not kept_a_copy(import_run):
        raise OriginalUnavailable(
            f"import #{import_run['id']} of {import_run['file_name']} kept no copy of its file"
            " (imported from the command line, not from the inbox)"
        )
    return report.removesuffix(REPORT_SUFFIX)


@contextlib.contextmanager
def local_file(location: str) -> Iterator[Path]:
    """The file at a local path or an object storage URL, as a local file."""
    if "://" not in location or location.startswith("file://"):
        yield Path(location.removeprefix("file://"))
        return
    from airflow.sdk import ObjectStoragePath

    with tempfile.TemporaryDirectory(prefix="segmail-") as tmp:
        local = Path(tmp) / "original.csv"
        with ObjectStoragePath(location).open("rb") as src, local.open("wb") as dst:
            shutil.copyfileobj(src, dst, length=1 << 20)
        yield local


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def rejected_rows_csv(import_run: dict, reasons: dict[int, str]) -> Iterator[str]:
    """The CSV text, in pieces: the file's header plus Reason, then each rejected row plus its reason."""
    location = archived_file(import_run)
    with local_file(location) as path:
        if not path.is_file() or _sha256(path) != import_run["file_sha256"]:
            raise OriginalUnavailable(f"the archived file {location} is gone or was changed")
        return _render(path, reasons)


def _render(path: Path, reasons: dict[int, str]) -> Iterator[str]:
    from segmail.imports.csvfile import detect_delimiter, detect_encoding

    encoding = detect_encoding(path)
    with path.open("r", encoding=encoding, newline="") as fh:
        delimiter = detect_delimiter(fh.readline())
        fh.seek(0)
        records = list(_numbered_records(csv.reader(fh, delimiter=delimiter, strict=False), set(reasons)))
    return _write(records, reasons, delimiter)


def _numbered_records(reader: Iterator[list[str]], wanted: set[int]) -> Iterator[tuple[int, list[str]]]:
    """(row number, cells) of the header (row 1) and of the wanted rows, numbered as the import does."""
    row_number = 0
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error:
            record = None  # a record the import rejected as malformed counts, but cannot be given back
        row_number += 1
        if record is not None and (row_number == 1 or row_number in wanted):
            yield row_number, record


def _write(records: list[tuple[int, list[str]]], reasons: dict[int, str], delimiter: str) -> Iterator[str]:
    if not records:
        return
    header = records[0][1]
    keys = [cell.strip().casefold() for cell in header]
    reason_at = keys.index(REASON.casefold()) if REASON.casefold() in keys else len(header)
    buffer = _Buffer()
    writer = csv.writer(buffer, delimiter=delimiter)
    buffer.write("\ufeff")
    writer.writerow(_with_reason(header, reason_at, REASON, len(header)))
    for row_number, record in records[1:]:
        writer.writerow(_with_reason(record, reason_at, reasons[row_number], len(header)))
        yield buffer.take()
    yield buffer.take()


def _with_reason(record: list[str], reason_at: int, reason: str, width: int) -> list[str]:
    """The row padded to the header's width, the reason in the Reason column, any surplus cells after it."""
    cells = [spreadsheet_safe(cell) for cell in record] + [""] * (width - len(record))
    if reason_at < width:
        cells[reason_at] = reason
        return cells
    return cells[:width] + [reason] + cells[width:]


class _Buffer:
    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, text: str) -> None:
        self.parts.append(text)

    def take(self) -> str:
        text, self.parts = "".join(self.parts), []
        return text
