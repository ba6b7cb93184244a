"""Row validation and normalisation for contact imports, vectorised per chunk.

One function per field checks a whole column at once and returns the normalised column; only
addresses that the fast pattern does not settle and phone numbers go through the field libraries
(email-validator, phonenumbers) one by one.

What an invalid cell does (GUIDE §2, required fields hold for the contact *after* the row is
applied):
- An invalid External ID (the only key whose loss could match the row to another contact) and a
  malformed record are errors: the row is rejected here.
- Any other invalid cell is ignored: its value is not imported, so the stored value stays. For an
  optional field (language, organisation, ...) that is a warning now. For a field a new contact
  needs (country, names, e-mail, mobile) it is a `CellIssue`, decided after matching: a warning
  when the row updates a stored contact or still has what a new contact needs, else part of the
  row's rejection ("a new contact needs ...").
- Empty cells are never an issue here: whether a row may leave a field empty depends on whether
  it matches a stored contact, which the resolve phase decides.
Lengths are checked on the normalised values, against the width of the columns they are stored in.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import NamedTuple

import numpy as np
import pandas as pd

from segmail.addresses import _FAST_EMAIL, _special_use_tlds, check_email, check_mobile, iso_countries
from segmail.imports.columns import (
    BY_KEY,
    COLUMNS,
    DISPLAY_NAMES,
    NEEDED,
    RECORD_FIELDS,
    SEGMENT_SEPARATOR,
)
from segmail.imports.csvfile import RawChunk
from segmail.language import normalize_language
from segmail.spreadsheet import unescape_cells
from segmail.store.models import IssueSeverity

TRUE_WORDS = frozenset({"1", "y", "yes", "true", "x", "ja", "j", "wahr", "opt out", "opted out", "opt-out"})
FALSE_WORDS = frozenset({"", "0", "n", "no", "false", "nein", "falsch"})

_DIAL_CODE = re.compile(r"^(?:\+|00)?\s*\d")


@dataclass(frozen=True)
class Issue:
    line_no: int | None
    column: str | None
    value: str | None
    severity: IssueSeverity
    reason: str


class CellIssue(NamedTuple):
    """An ignored cell of a field a new contact needs; the resolve phase makes it a warning or the
    row's rejection. Staged as is (the fields are the staging table's columns)."""

    line_no: int
    field: str  # the Column key
    column_name: str  # as messages name it
    value: str
    reason: str  # what is wrong with the value
    warning: str  # the same as a warning: the cell was ignored


@dataclass
class ValidatedChunk:
    records: list[tuple]  # in RECORD_FIELDS order, empty and ignored cells as None
    segments: list[tuple[int, str, str]]  # (line_no, name_key, name as written)
    issues: list[Issue] = field(default_factory=list)
    rejected_rows: int = 0
    cells: list[CellIssue] = field(default_factory=list)


class RowChecks:
    """The cells of one chunk as trimmed pandas columns, with the issues found so far, the rows that
    an error rejects and the cells that are ignored."""

    def __init__(self, chunk: RawChunk) -> None:
        self.lines = np.asarray(chunk.line_numbers, dtype=np.int64)
        self.size = len(self.lines)
        self.frame = pd.DataFrame(
            {name: pd.Series(values, dtype=object) for name, values in chunk.cells.items()}
        )
        for name in self.frame.columns:
            self.frame[name] = unescape_cells(self.frame[name].str.strip())
        self.issues = [
            Issue(line, None, None, IssueSeverity.ERROR, reason) for line, reason in chunk.malformed
        ]
        self.bad = np.zeros(self.size, dtype=bool)
        self.malformed = len(chunk.malformed)
        self.ignored: dict[str, np.ndarray] = {}  # field -> the rows whose cell is not imported
        self.cells: list[CellIssue] = []

    def has(self, name: str) -> bool:
        return name in self.frame.columns

    def column(self, name: str) -> pd.Series:
        """The field's cells; all empty when the file has no such column."""
        return self.frame[name] if self.has(name) else pd.Series([""] * self.size, dtype=object)

    def flag(
        self,
        mask: pd.Series | np.ndarray,
        name: str,
        reason: str | Callable[[str], str],
        *,
        severity: IssueSeverity = IssueSeverity.ERROR,
    ) -> None:
        """One issue per row in mask; `reason` may be a function of the cell."""
        for pos, value, text in self._each(mask, name, reason):
            self.add(pos, name, value, text, severity=severity)

    def ignore(self, mask: pd.Series | np.ndarray, name: str, reason: str | Callable[[str], str]) -> None:
        """The cells in mask are invalid: their values are not imported (see the module docstring)."""
        for pos, value, text in self._each(mask, name, reason):
            self.ignore_cell(pos, name, value, text)

    def _each(
        self, mask: pd.Series | np.ndarray, name: str, reason: str | Callable[[str], str]
    ) -> Iterator[tuple[int, str, str]]:
        values = self.column(name)
        for pos in np.flatnonzero(np.asarray(mask, dtype=bool)):
            value = values.iat[pos]
            yield pos, value, reason(value) if callable(reason) else reason

    def add(
        self, pos: int, name: str, value: str, reason: str, *, severity: IssueSeverity = IssueSeverity.ERROR
    ) -> None:
        self.issues.append(Issue(int(self.lines[pos]), DISPLAY_NAMES[name], value, severity, reason))
        if severity == IssueSeverity.ERROR:
            self.bad[pos] = True

    def ignore_cell(self, pos: int, name: str, value: str, reason: str) -> None:
        self.ignored.setdefault(name, np.zeros(self.size, dtype=bool))[pos] = True
        line, column = int(self.lines[pos]), DISPLAY_NAMES[name]
        warning = f"{reason}; {column} left unchanged"
        if name in NEEDED:
            self.cells.append(CellIssue(line, name, column, value, reason, warning))
        else:
            self.issues.append(Issue(line, column, value, IssueSeverity.WARNING, warning))

    def blank_ignored(self, values: dict[str, object]) -> None:
        """Empty the staged values of ignored cells, so the stored values stay."""
        for name, mask in self.ignored.items():
            for staged in BY_KEY[name].staged:
                values[staged] = np.where(mask, "", np.asarray(values[staged], dtype=object))

    @property
    def rejected_rows(self) -> int:
        return int(self.bad.sum()) + self.malformed


@cache
def _cached_language(value: str) -> str | None:
    """Few distinct values per file: normalise each once."""
    return normalize_language(value) if value else ""


def split_segments(cell: str) -> list[str]:
    """'A; B ;; a' -> ['A', 'B']: trimmed, empty parts dropped, first spelling of each name kept."""
    seen: dict[str, str] = {}
    for part in cell.split(SEGMENT_SEPARATOR):
        name = part.strip()
        if name and name.casefold() not in seen:
            seen[name.casefold()] = name
    return list(seen.values())


def check_country(rows: RowChecks) -> tuple[pd.Series, pd.Series]:
    """ISO 3166 alpha-2, upper-cased; a dial code such as +1 gets a message that says what is expected.
    Returns the codes and where they are valid (an invalid code is ignored)."""
    raw = rows.column("country_code")
    country = raw.str.upper()
    empty = raw == ""
    wrong = ~empty & ~country.isin(iso_countries())
    dial = raw.str.match(_DIAL_CODE)
    rows.ignore(
        wrong & dial,
        "country_code",
        lambda v: f"{v!r} is a dial code; expected an ISO 3166 alpha-2 country code such as US, CA, BR, AU",
    )
    rows.ignore(
        wrong & ~dial,
        "country_code",
        lambda v: f"{v!r} is not an ISO 3166 alpha-2 country code (such as US, CA, BR, AU)",
    )
    return country, ~empty & ~wrong


def check_lengths(rows: RowChecks, values: dict[str, object]) -> None:
    """Normalised values longer than the column they are stored in (upper- or lower-casing can make
    a value longer than its cell): an invalid External ID rejects the row, other cells are ignored."""
    for column in COLUMNS:
        if not (column.max_length and rows.has(column.key)):
            continue
        too_long = np.zeros(rows.size, dtype=bool)
        for name in column.staged:
            too_long |= (pd.Series(values[name], dtype=object).str.len() > column.max_length).to_numpy()
        if column.key in rows.ignored:  # ignored already: not checked again
            too_long &= ~rows.ignored[column.key]
        check = rows.flag if column.rejects_row else rows.ignore
        check(too_long, column.key, f"longer than {column.max_length} characters")


def check_email_column(rows: RowChecks) -> list[str]:
    """The fast pattern settles most addresses; email-validator decides (and explains) the rest.
    Returns the addresses, normalised where email-validator looked at them."""
    raw = rows.column("email")
    emails = raw.tolist()
    fast = raw.str.fullmatch(_FAST_EMAIL).fillna(False).astype(bool)
    if fast.any():
        tld = raw[fast].str.rsplit(".", n=1).str[-1].str.lower()
        fast[fast] = ~tld.isin(_special_use_tlds())
    for pos in np.flatnonzero(((raw != "") & ~fast).to_numpy()):
        normalized, reason = check_email(emails[pos])
        if reason:
            rows.ignore_cell(pos, "email", emails[pos], f"invalid e-mail address: {reason}")
        else:
            emails[pos] = normalized
    return emails


def check_mobile_column(rows: RowChecks, country: pd.Series, country_ok: pd.Series) -> list[str]:
    """E.164 in the row's country; the number of a row without a valid country cannot be read."""
    raw = rows.column("mobile")
    given = raw != ""
    rows.ignore(
        given & ~country_ok,
        "mobile",
        f"not read: a mobile number is read in the row's {DISPLAY_NAMES['country_code']}, which is empty or invalid",
    )
    mobiles = [""] * rows.size
    countries = country.tolist()
    for pos in np.flatnonzero((given & country_ok).to_numpy()):
        e164, reason = check_mobile(raw.iat[pos], countries[pos])
        if reason:
            rows.ignore_cell(pos, "mobile", raw.iat[pos], reason)
        else:
            mobiles[pos] = e164
    return mobiles


def check_language(rows: RowChecks) -> pd.Series:
    """BCP 47 casing; a value that is no language tag only warns and is not stored."""
    raw = rows.column("language")
    language = raw.map(_cached_language)
    rows.ignore(
        (raw != "") & language.isna(),
        "language",
        lambda v: f"{v!r} is not a language code such as de, en-US or fr-CA",
    )
    return language.fillna("")


def check_opt_out(rows: RowChecks) -> pd.Series:
    """Yes/no words in English and German; anything else only warns and leaves the opt-out alone."""
    words = rows.column("email_opt_out").str.lower()
    opt_out = words.isin(TRUE_WORDS)
    rows.flag(
        ~opt_out & ~words.isin(FALSE_WORDS),
        "email_opt_out",
        lambda v: f"{v!r} is not yes/no; opt-out left unchanged",
        severity=IssueSeverity.WARNING,
    )
    return opt_out


def _records(rows: RowChecks, values: dict[str, object], opt_out: pd.Series) -> list[tuple]:
    """The rows without errors as RECORD_FIELDS tuples, empty cells as None, opt-out as 0/1."""
    keep = ~rows.bad
    columns = [np.asarray(values[name], dtype=object)[keep] for name in RECORD_FIELDS[:-1]]
    columns.append(opt_out.to_numpy()[keep].astype(int))
    return [
        (int(row[0]), *(None if value == "" else value for value in row[1:-1]), int(row[-1]))
        for row in zip(*columns, strict=True)
    ]


def _segments(rows: RowChecks) -> list[tuple[int, str, str]]:
    """(line, name key, name) for every segment named in a row without errors."""
    if not rows.has("segments"):
        return []
    keep = ~rows.bad
    out: list[tuple[int, str, str]] = []
    for line, cell in zip(rows.lines[keep], rows.frame["segments"].to_numpy()[keep], strict=True):
        if cell:
            out.extend((int(line), name.casefold(), name) for name in split_segments(cell))
    return out


def validate_chunk(chunk: RawChunk) -> ValidatedChunk:
    """Check and normalise a chunk; the order of the checks is the order of a row's issues (the
    `CellIssue`s are reported after matching)."""
    rows = RowChecks(chunk)
    country, country_ok = check_country(rows)
    emails = check_email_column(rows)
    mobiles = check_mobile_column(rows, country, country_ok)
    language = check_language(rows)
    opt_out = check_opt_out(rows)
    values = {
        "line_no": rows.lines,
        "external_id": rows.column("external_id"),
        "email": emails,
        "email_key": [e.lower() for e in emails],
        "country_code": country,
        "mobile_e164": mobiles,
        "first_name": rows.column("first_name"),
        "last_name": rows.column("last_name"),
        "account_number": rows.column("account_number"),
        "organization": rows.column("organization"),
        "language": language,
        "salesperson_code": rows.column("salesperson").str.upper(),
    }
    check_lengths(rows, values)
    rows.blank_ignored(values)
    records = _records(rows, values, opt_out)
    return ValidatedChunk(records, _segments(rows), rows.issues, rows.rejected_rows, rows.cells)
