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
from functools import cache, lru_cache
from typing import NamedTuple

import numpy as np
import pandas as pd

from segmail.addresses import _FAST_EMAIL, _special_use_tlds, check_email, iso_countries
from segmail.imports.columns import (
    BY_KEY,
    COLUMNS,
    DISPLAY_NAMES,
    NEEDED,
    RECORD_FIELDS,
    SEGMENT_SEPARATOR,
)
from segmail.imports.csvfile import RawChunk
from segmail.imports.phones import mobile_e164
from segmail.language import normalize_language
from segmail.spreadsheet import unescape_cells
from segmail.store.models import IssueSeverity

TRUE_WORDS = frozenset({"1", "y", "yes", "true", "x", "ja", "j", "wahr", "opt out", "opted out", "opt-out"})
FALSE_WORDS = frozenset({"", "0", "n", "no", "false", "nein", "falsch"})

_DIAL_CODE = re.compile(r"^(?:\+|00)?\s*\d")
_FAST_EMAIL_PATTERN = re.compile(_FAST_EMAIL)


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
    columns: dict[str, list]  # RECORD_FIELDS -> the values of the rows without errors (empty: "")
    segments: list[tuple[int, str, str]]  # (line_no, name_key, name as written)
    issues: list[Issue] = field(default_factory=list)
    rejected_rows: int = 0
    cells: list[CellIssue] = field(default_factory=list)

    @property
    def records(self) -> list[tuple]:
        """The rows as tuples in RECORD_FIELDS order, empty values as None."""
        return list(zip(*map(nullable, self.columns.values()), strict=True))


def nullable(values: list) -> list:
    """A column with its empty strings as None (what SQL stores for an empty cell)."""
    if not values or not isinstance(values[0], str):
        return values  # numbers
    return [value or None for value in values]


class RowChecks:
    """The cells of one chunk as trimmed pandas columns, with the issues found so far, the rows that
    an error rejects and the cells that are ignored."""

    def __init__(self, chunk: RawChunk) -> None:
        self.lines = np.asarray(chunk.line_numbers, dtype=np.int64)
        self.size = len(self.lines)
        self.values = {name: _trimmed(cells) for name, cells in chunk.cells.items()}
        self.empty = pd.Series([""] * self.size, dtype=object)
        self.issues = [
            Issue(line, None, None, IssueSeverity.ERROR, reason) for line, reason in chunk.malformed
        ]
        self.bad = np.zeros(self.size, dtype=bool)
        self.malformed = len(chunk.malformed)
        self.ignored: dict[str, np.ndarray] = {}  # field -> the rows whose cell is not imported
        self.cells: list[CellIssue] = []

    def has(self, name: str) -> bool:
        return name in self.values

    def column(self, name: str) -> pd.Series:
        """The field's cells; all empty when the file has no such column."""
        return self.values.get(name, self.empty)

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
        positions = np.flatnonzero(np.asarray(mask, dtype=bool))
        if not len(positions):
            return
        values = self.column(name).to_numpy()
        for pos in positions:
            value = values[pos]
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


def _trimmed(cells: list[str]) -> pd.Series:
    """Cells without surrounding spaces, spreadsheet escapes undone (looked for only when a cell may
    start with a quote)."""
    trimmed = list(map(str.strip, cells))
    column = pd.Series(trimmed, dtype=object)
    joined = "\n".join(trimmed)
    return unescape_cells(column) if joined.startswith("'") or "\n'" in joined else column


def per_distinct(column: pd.Series, function: Callable[[str], object]) -> np.ndarray:
    """`function` of every cell, computed once per distinct value (columns such as country, language
    or segments hold few); an object array."""
    codes, uniques = pd.factorize(column.to_numpy())
    results = np.empty(len(uniques), dtype=object)
    for i, value in enumerate(uniques):
        results[i] = function(value)
    return results[codes]


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
    country = pd.Series(per_distinct(raw, str.upper), dtype=object)
    empty = (raw == "").to_numpy()
    wrong = ~empty & ~country.isin(iso_countries()).to_numpy()
    dial = np.zeros(rows.size, dtype=bool)
    if wrong.any():
        dial = per_distinct(raw, lambda v: bool(_DIAL_CODE.match(v))).astype(bool)
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
    return country, pd.Series(~empty & ~wrong)


def check_lengths(rows: RowChecks, values: dict[str, object]) -> None:
    """Normalised values longer than the column they are stored in (upper- or lower-casing can make
    a value longer than its cell): an invalid External ID rejects the row, other cells are ignored."""
    for column in COLUMNS:
        if not (column.max_length and rows.has(column.key)):
            continue
        too_long = np.zeros(rows.size, dtype=bool)
        for name in column.staged:
            cells = _as_list(values[name])
            if max(map(len, cells), default=0) > column.max_length:
                too_long |= np.fromiter(map(len, cells), dtype=np.int64, count=rows.size) > column.max_length
        if not too_long.any():
            continue
        if column.key in rows.ignored:  # ignored already: not checked again
            too_long &= ~rows.ignored[column.key]
        check = rows.flag if column.rejects_row else rows.ignore
        check(too_long, column.key, f"longer than {column.max_length} characters")


def _as_list(values: object) -> list:
    """A column as a list (iterating a list is several times faster than iterating a Series)."""
    return values if isinstance(values, list) else values.tolist()


def check_email_column(rows: RowChecks) -> list[str]:
    """The fast pattern settles most addresses; email-validator decides (and explains) the rest.
    Returns the addresses, normalised where email-validator looked at them."""
    emails = rows.column("email").tolist()
    fast, special = _FAST_EMAIL_PATTERN.fullmatch, _special_use_tlds()
    slow = [
        pos
        for pos, email in enumerate(emails)
        if email and not (fast(email) and email.rsplit(".", 1)[-1].lower() not in special)
    ]
    for pos in slow:
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
    values, countries = raw.tolist(), country.tolist()
    for pos in np.flatnonzero(given.to_numpy() & np.asarray(country_ok, dtype=bool)):
        e164, reason = mobile_e164(values[pos], countries[pos])
        if reason:
            rows.ignore_cell(pos, "mobile", values[pos], reason)
        else:
            mobiles[pos] = e164
    return mobiles


def check_language(rows: RowChecks) -> pd.Series:
    """BCP 47 casing; a value that is no language tag only warns and is not stored."""
    raw = rows.column("language")
    language = pd.Series(per_distinct(raw, _cached_language), dtype=object)
    rows.ignore(
        (raw != "").to_numpy() & language.isna().to_numpy(),
        "language",
        lambda v: f"{v!r} is not a language code such as de, en-US or fr-CA",
    )
    return language.fillna("")


def check_opt_out(rows: RowChecks, key: str = "email_opt_out") -> pd.Series:
    """Yes/no words in English and German; anything else only warns and leaves the opt-out alone.
    `key`: the e-mail opt-out column or the SMS one (the same words)."""
    words = pd.Series(per_distinct(rows.column(key), str.lower), dtype=object)
    opt_out = words.isin(TRUE_WORDS)
    rows.flag(
        (~opt_out & ~words.isin(FALSE_WORDS)).to_numpy(),
        key,
        lambda v: f"{v!r} is not yes/no; opt-out left unchanged",
        severity=IssueSeverity.WARNING,
    )
    return opt_out


def _kept(values: object, keep: np.ndarray | None) -> list:
    """The values of the rows in keep (all when None) as a list of Python objects."""
    if keep is None:
        return values.tolist() if hasattr(values, "tolist") else list(values)
    return np.asarray(values, dtype=object)[keep].tolist()


def _columns(rows: RowChecks, values: dict[str, object], opt_outs: dict[str, pd.Series]) -> dict[str, list]:
    """The rows without errors, column by column in RECORD_FIELDS order: empty cells as "",
    opt-outs (by staging column) as 0/1."""
    keep = ~rows.bad if rows.bad.any() else None
    columns = {"line_no": _kept(rows.lines, keep)}
    for name in RECORD_FIELDS[1:]:
        if name in opt_outs:
            columns[name] = _kept(opt_outs[name].to_numpy().astype(int), keep)
        else:
            columns[name] = _kept(values[name], keep)
    return columns


@lru_cache(maxsize=8192)
def _named_segments(cell: str) -> tuple[tuple[str, str], ...]:
    """(key, name) of each segment a cell names; a file repeats few combinations."""
    return tuple((name.casefold(), name) for name in split_segments(cell)) if cell else ()


def _segments(rows: RowChecks) -> list[tuple[int, str, str]]:
    """(line, name key, name) for every segment named in a row without errors."""
    if not rows.has("segments"):
        return []
    keep = ~rows.bad
    named = per_distinct(rows.column("segments"), _named_segments)[keep]
    lines = rows.lines[keep].tolist()
    return [(line, key, name) for line, segments in zip(lines, named, strict=True) for key, name in segments]


def validate_chunk(chunk: RawChunk) -> ValidatedChunk:
    """Check and normalise a chunk; the order of the checks is the order of a row's issues (the
    `CellIssue`s are reported after matching)."""
    rows = RowChecks(chunk)
    country, country_ok = check_country(rows)
    emails = check_email_column(rows)
    mobiles = check_mobile_column(rows, country, country_ok)
    language = check_language(rows)
    opt_outs = {"opt_out": check_opt_out(rows), "sms_opt_out": check_opt_out(rows, "sms_opt_out")}
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
        "salesperson_code": per_distinct(rows.column("salesperson"), str.upper),
    }
    check_lengths(rows, values)
    rows.blank_ignored(values)
    columns = _columns(rows, values, opt_outs)
    return ValidatedChunk(columns, _segments(rows), rows.issues, rows.rejected_rows, rows.cells)
