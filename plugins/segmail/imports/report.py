"""Import reports: the issues of one run as a CSV that is safe to open in a spreadsheet."""

from __future__ import annotations

import csv
from pathlib import Path

from sqlalchemy import Engine

from segmail.spreadsheet import spreadsheet_safe
from segmail.store.read import iter_issues

REPORT_HEADER = ("Row", "Column", "Value", "Severity", "Reason")


def write_issue_report(engine: Engine, import_run_id: int, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(REPORT_HEADER)
        for row in iter_issues(engine, import_run_id):
            writer.writerow([spreadsheet_safe(v) for v in row])
    return path
