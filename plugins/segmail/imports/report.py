"""Import reports: the issues of one run as a CSV that is safe to open in a spreadsheet."""

from __future__ import annotations

import csv
from pathlib import Path

from sqlalchemy import Engine

from segmail.store.read import iter_issues

REPORT_HEADER = ("Row", "Column", "Value", "Severity", "Reason")
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_ESCAPED = r"^'(?=[=+\-@\t\r])"


def spreadsheet_safe(value: object) -> str:
    """Neutralise formula injection: a cell that Excel would evaluate is prefixed with a quote."""
    if value is None:
        return ""
    text_value = str(value)
    if text_value.startswith(_FORMULA_PREFIXES):
        return "'" + text_value
    return text_value


def unescape_cells(column):  # noqa: ANN001, ANN201 - a pandas Series of str
    """The inverse of spreadsheet_safe for a whole column, so exported files import back unchanged."""
    escaped = column.str.startswith("'")
    if not escaped.any():
        return column
    column = column.copy()
    column[escaped] = column[escaped].str.replace(_ESCAPED, "", regex=True)
    return column


def write_issue_report(engine: Engine, import_run_id: int, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(REPORT_HEADER)
        for row in iter_issues(engine, import_run_id):
            writer.writerow([spreadsheet_safe(v) for v in row])
    return path
