"""How the `segmail` command prints rows: an aligned table for people, JSON for scripts."""

from __future__ import annotations

import json
from collections.abc import Sequence


def format_table(rows: list[dict], columns: Sequence[str]) -> str:
    if not rows:
        return "(none)"
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in columns}
    lines = ["  ".join(c.ljust(widths[c]) for c in columns)]
    lines.append("  ".join("-" * widths[c] for c in columns))
    lines += ["  ".join(str(r[c]).ljust(widths[c]) for c in columns) for r in rows]
    return "\n".join(lines)


def print_rows(rows: list[dict], columns: Sequence[str], *, fmt: str = "table") -> None:
    """`--format json`: every field of every row; `table`: the chosen columns, empty for None."""
    if fmt == "json":
        print(json.dumps(rows, default=str, indent=2))
        return
    print(format_table([{c: ("" if r.get(c) is None else r[c]) for c in columns} for r in rows], columns))
