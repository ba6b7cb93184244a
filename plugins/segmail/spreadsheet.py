"""Spreadsheet-safe cells: what segmail writes (reports, exports, CSV downloads) cannot run as a
formula in Excel, and what it reads back from its own exports is restored exactly."""

from __future__ import annotations

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
