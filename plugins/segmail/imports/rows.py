"""Row validation and normalisation for contact imports, vectorised per chunk.

One function per field checks a whole column at once and returns the normalised column; only
addresses that the fast pattern does not settle and phone numbers go through the field libraries
(email-validator, phonenumbers) one by one. An error rejects the row; a warning only notes the
cell, and the rest of the row lands.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache

import numpy as np
import pandas as pd

from segmail.addresses import _FAST_EMAIL, _special_use_tlds, check_email, check_mobile, iso_countries
from segmail.imports.columns import DISPLAY_NAMES, MAX_LENGTH, RECORD_FIELDS, SEGMENT_SEPARATOR
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


@dataclass
class ValidatedChunk:
    records: list[tuple]  # in RECORD_FIELDS order, empty cells as None
    segments: list[tuple[int, str, str]]  # (line_no, name_key, name as written)
    issues: list[Issue] = field(default_factory=list)
    rejected_rows: int = 0


class RowChecks:
    """The cells of one chunk as trimmed pandas columns, with the issues found so far and the rows
    that an error rejects."""

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
        values = self.column(name)
        for pos in np.flatnonzero(np.asarray(mask, dtype=bool)):
            value = values.iat[pos]
            self.add(pos, name, value, reason(value) if callable(reason) else reason, severity=severity)

    def add(
        self, pos: int, name: str, value: str, reason: str, *, severity: IssueSeverity = IssueSeverity.ERROR
    ) -> None:
        self.issues.append(Issue(int(self.lines[pos]), DISPLAY_NAMES[name], value, severity, reason))
        if severity == IssueSeverity.ERROR:
            self.bad[pos] = True

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
    Returns the codes and where they are valid."""
    raw = rows.column("country_code")
    country = raw.str.upper()
    empty = raw == ""
    rows.flag(empty, "country_code", f"{DISPLAY_NAMES['country_code']} is required")
    wrong = ~empty & ~country.isin(iso_countries())
    dial = raw.str.match(_DIAL_CODE)
    rows.flag(
        wrong & dial,
        "country_code",
        lambda v: f"{v!r} is a dial code; expected an ISO 3166 alpha-2 country code such as US, CA, BR, AU",
    )
    rows.flag(
        wrong & ~dial,
        "country_code",
        lambda v: f"{v!r} is not an ISO 3166 alpha-2 country code (such as US, CA, BR, AU)",
    )
    return country, ~empty & ~wrong


def check_names(rows: RowChecks) -> None:
    for name in ("first_name", "last_name"):
        rows.flag(rows.column(name) == "", name, f"{DISPLAY_NAMES[name]} is required")


def check_lengths(rows: RowChecks) -> None:
    for name, limit in MAX_LENGTH.items():
        if rows.has(name):
            rows.flag(rows.frame[name].str.len() > limit, name, f"longer than {limit} characters")


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
            rows.add(pos, "email", emails[pos], f"invalid e-mail address: {reason}")
        else:
            emails[pos] = normalized
    return emails


def check_mobile_column(rows: RowChecks, country: pd.Series, country_ok: pd.Series) -> list[str]:
    """E.164 in the row's country; numbers of rows without a valid country are not read."""
    raw = rows.column("mobile")
    mobiles = [""] * rows.size
    countries = country.tolist()
    for pos in np.flatnonzero(((raw != "") & country_ok).to_numpy()):
        e164, reason = check_mobile(raw.iat[pos], countries[pos])
        if reason:
            rows.add(pos, "mobile", raw.iat[pos], reason)
        else:
            mobiles[pos] = e164
    return mobiles


def check_reachable(rows: RowChecks) -> None:
    unreachable = (rows.column("email") == "") & (rows.column("mobile") == "")
    rows.flag(
        unreachable, "email", f"either {DISPLAY_NAMES['email']} or {DISPLAY_NAMES['mobile']} is required"
    )


def check_language(rows: RowChecks) -> pd.Series:
    """BCP 47 casing; a value that is no language tag only warns and is not stored."""
    raw = rows.column("language")
    language = raw.map(_cached_language)
    rows.flag(
        (raw != "") & language.isna(),
        "language",
        lambda v: f"{v!r} is not a language code such as de, en-US or fr-CA; language left unchanged",
        severity=IssueSeverity.WARNING,
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
    """Check and normalise a chunk; the order of the checks is the order of a row's issues."""
    rows = RowChecks(chunk)
    country, country_ok = check_country(rows)
    check_names(rows)
    check_lengths(rows)
    emails = check_email_column(rows)
    mobiles = check_mobile_column(rows, country, country_ok)
    check_reachable(rows)
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
    return ValidatedChunk(_records(rows, values, opt_out), _segments(rows), rows.issues, rows.rejected_rows)
