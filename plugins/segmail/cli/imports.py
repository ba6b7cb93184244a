"""`segmail import FILE` and `segmail imports`: one contact file by hand, and the recent import runs.

Exit codes (README): 0 when the file was processed, even with rejected rows (they are printed);
1 when the whole file was rejected (not CSV, missing columns); 2 for a usage mistake such as a path
that is not a file.
"""

from __future__ import annotations

import argparse
import sys
from itertools import islice
from pathlib import Path

from segmail.cli.tables import format_table, print_rows
from segmail.errors import SegmailError
from segmail.imports.csvfile import not_a_csv_file

ISSUES_SHOWN = 20
ISSUE_COLUMNS = ("row", "column", "value", "severity", "reason")


def _usable_path(path: Path) -> None:
    """A path that is not a file is a usage mistake (exit 2), not a rejected file."""
    if path.is_dir():
        raise SegmailError(
            f"{path} is a directory, not a CSV file; give one file (the contacts_import DAG reads a whole inbox)"
        )
    if not path.is_file():
        raise SegmailError(f"no such file: {path}")


def issue_rows(import_run_id: int, *, limit: int | None = None) -> tuple[list[dict], int]:
    """The first `limit` issues (rejected rows, duplicates, warnings) of a run, and how many there are."""
    from segmail.store.db import default_engine
    from segmail.store.read import iter_issues

    issues = iter_issues(default_engine(), import_run_id)
    rows = [
        {
            "row": line,
            "column": column or "",
            "value": (value or "")[:30],
            "severity": severity,
            "reason": reason,
        }
        for line, column, value, severity, reason in islice(issues, limit)
    ]
    return rows, len(rows) + sum(1 for _ in issues)


def print_issues(import_run_id: int, *, limit: int = ISSUES_SHOWN) -> None:
    rows, total = issue_rows(import_run_id, limit=limit)
    if not rows:
        return
    print(f"\nRejected rows, duplicates and warnings ({total}):")
    print(format_table(rows, ISSUE_COLUMNS))
    if total > len(rows):
        print(f"... and {total - len(rows)} more (--report FILE writes them all)")


def cmd_import(args: argparse.Namespace) -> int:
    from segmail.imports.pipeline import import_file
    from segmail.store.read import IMPORT_COUNTS

    path = Path(args.file)
    _usable_path(path)
    if kind := not_a_csv_file(path):
        print(f"error: {path.name} is {kind}, not a CSV file", file=sys.stderr)
        return 1
    result = import_file(path, mode=args.mode, report_path=args.report)
    if result.status != "succeeded":
        print(f"error: {result.file_name} rejected: {result.error}", file=sys.stderr)
        return 1
    print(f"imported {result.file_name} ({result.mode}, import run {result.import_run_id})")
    print("  ".join(f"{k}={getattr(result, k)}" for k in IMPORT_COUNTS))
    if result.report_path:
        print(f"report: {result.report_path}")
    print_issues(result.import_run_id)
    return 0


def cmd_imports(args: argparse.Namespace) -> int:
    from segmail.store.read import IMPORT_COUNTS, recent_imports

    rows = recent_imports(limit=args.limit)
    print_rows(rows, ("id", "file_name", "status", *IMPORT_COUNTS, "finished_at", "error"), fmt=args.format)
    return 0


def add_import(sub: argparse._SubParsersAction) -> None:
    imp = sub.add_parser(
        "import",
        help="import one contact CSV file",
        description="Import one contact CSV file. Exit 0: processed (rejected rows and warnings are "
        "printed); 1: the whole file was rejected; 2: a usage mistake (e.g. not a file).",
    )
    imp.add_argument("file")
    imp.add_argument(
        "--mode",
        choices=("merge", "replace"),
        default="merge",
        help="merge adds the listed segments; replace makes memberships exactly the listed set",
    )
    imp.add_argument("--report", help="write rejected rows and warnings to this CSV file")
    imp.set_defaults(func=cmd_import)

    imports = sub.add_parser("imports", help="recent import runs, with the reason of a rejected file")
    imports.add_argument("--limit", type=int, default=20)
    imports.add_argument("--format", choices=("table", "json"), default="table")
    imports.set_defaults(func=cmd_imports)
