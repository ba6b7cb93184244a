"""Row validation and normalisation for contact imports, vectorised per chunk.

The cheap checks run on whole columns; only addresses that the fast pattern does not settle and
phone numbers go through the field libraries (email-validator, phonenumbers) one by one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache

import numpy as np
import pandas as pd

from segmail.addresses import _FAST_EMAIL, _special_use_tlds, check_email, check_mobile, iso_countries
from segmail.imports.csvfile import DISPLAY_NAMES, RawChunk
from segmail.language import normalize_language
from segmail.spreadsheet import unescape_cells

# Column order of the staging table (see importer.STAGE_COLUMNS).
RECORD_FIELDS = (
    "line_no",
    "external_id",
    "email",
    "email_key",
    "country_code",
    "mobile_e164",
    "first_name",
    "last_name",
    "account_number",
    "organization",
    "language",
    "salesperson_code",
    "opt_out",
)
MAX_LENGTH = {
    "external_id": 200,
    "email": 320,
    "first_name": 200,
    "last_name": 200,
    "account_number": 100,
    "organization": 300,
    "salesperson": 50,
    "segments": 4000,
}
SEGMENT_SEPARATOR = ";"
TRUE_WORDS = frozenset({"1", "y", "yes", "true", "x", "ja", "j", "wahr", "opt out", "opted out", "opt-out"})
FALSE_WORDS = frozenset({"", "0", "n", "no", "false", "nein", "falsch"})

_DIAL_CODE = re.compile(r"^(?:\+|00)?\s*\d")


@dataclass(frozen=True)
class Issue:
    line_no: int | None
    column: str | None
    value: str | None
    severity: str  # error | duplicate | warning
    reason: str


@dataclass
class ValidatedChunk:
    records: list[tuple]
    segments: list[tuple[int, str, str]]  # (line_no, name_key, name as written)
    issues: list[Issue] = field(default_factory=list)
    rejected_rows: int = 0


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


def validate_chunk(chunk: RawChunk) -> ValidatedChunk:
    lines = np.asarray(chunk.line_numbers, dtype=np.int64)
    n = len(lines)
    frame = pd.DataFrame({name: pd.Series(values, dtype=object) for name, values in chunk.cells.items()})
    for name in frame.columns:
        frame[name] = unescape_cells(frame[name].str.strip())

    def column(name: str) -> pd.Series:
        return frame[name] if name in frame.columns else pd.Series([""] * n, dtype=object)

    issues: list[Issue] = [Issue(line, None, None, "error", reason) for line, reason in chunk.malformed]
    bad = np.zeros(n, dtype=bool)

    def flag(mask, name: str, reason, *, severity: str = "error") -> None:  # noqa: ANN001
        values = column(name)
        for pos in np.flatnonzero(np.asarray(mask, dtype=bool)):
            text = reason(values.iat[pos]) if callable(reason) else reason
            issues.append(Issue(int(lines[pos]), DISPLAY_NAMES[name], values.iat[pos], severity, text))
            if severity == "error":
                bad[pos] = True

    # Country: ISO 3166 alpha-2; a dial code such as +1 gets a message that says what is expected.
    raw_country = column("country_code")
    country = raw_country.str.upper()
    empty_country = raw_country == ""
    flag(empty_country, "country_code", "Country Code is required")
    wrong_country = ~empty_country & ~country.isin(iso_countries())
    dial = raw_country.str.match(_DIAL_CODE)
    flag(
        wrong_country & dial,
        "country_code",
        lambda v: f"{v!r} is a dial code; expected an ISO 3166 alpha-2 country code such as US, CA, BR, AU",
    )
    flag(
        wrong_country & ~dial,
        "country_code",
        lambda v: f"{v!r} is not an ISO 3166 alpha-2 country code (such as US, CA, BR, AU)",
    )
    country_ok = ~empty_country & ~wrong_country

    for name, label in (("first_name", "First Name"), ("last_name", "Last Name")):
        flag(column(name) == "", name, f"{label} is required")

    for name, limit in MAX_LENGTH.items():
        if name in frame.columns:
            flag(frame[name].str.len() > limit, name, f"longer than {limit} characters")

    # E-mail: the fast pattern settles most addresses; email-validator decides (and explains) the rest.
    raw_email = column("email")
    emails = raw_email.tolist()
    has_email = raw_email != ""
    fast = raw_email.str.fullmatch(_FAST_EMAIL).fillna(False).astype(bool)
    if fast.any():
        tld = raw_email[fast].str.rsplit(".", n=1).str[-1].str.lower()
        fast[fast] = ~tld.isin(_special_use_tlds())
    for pos in np.flatnonzero((has_email & ~fast).to_numpy()):
        normalized, reason = check_email(emails[pos])
        if reason:
            issues.append(
                Issue(int(lines[pos]), "Email", emails[pos], "error", f"invalid e-mail address: {reason}")
            )
            bad[pos] = True
        else:
            emails[pos] = normalized
    email_keys = [e.lower() for e in emails]

    # Mobile: E.164 in the row's country.
    raw_mobile = column("mobile")
    mobiles = [""] * n
    countries = country.tolist()
    for pos in np.flatnonzero(((raw_mobile != "") & country_ok).to_numpy()):
        e164, reason = check_mobile(raw_mobile.iat[pos], countries[pos])
        if reason:
            issues.append(Issue(int(lines[pos]), "Mobile Number", raw_mobile.iat[pos], "error", reason))
            bad[pos] = True
        else:
            mobiles[pos] = e164
    flag(~has_email & (raw_mobile == ""), "email", "either Email or Mobile Number is required")

    # Optional fields that only warn: the rest of the row still lands.
    language = column("language").map(_cached_language)
    flag(
        (column("language") != "") & language.isna(),
        "language",
        lambda v: f"{v!r} is not a language code such as de, en-US or fr-CA; language left unchanged",
        severity="warning",
    )
    language = language.fillna("")
    opt_raw = column("email_opt_out").str.lower()
    opt_out = opt_raw.isin(TRUE_WORDS)
    flag(
        ~opt_out & ~opt_raw.isin(FALSE_WORDS),
        "email_opt_out",
        lambda v: f"{v!r} is not yes/no; opt-out left unchanged",
        severity="warning",
    )
    salesperson = column("salesperson").str.upper()

    keep = ~bad
    out = {
        "line_no": lines,
        "external_id": column("external_id"),
        "email": emails,
        "email_key": email_keys,
        "country_code": country,
        "mobile_e164": mobiles,
        "first_name": column("first_name"),
        "last_name": column("last_name"),
        "account_number": column("account_number"),
        "organization": column("organization"),
        "language": language,
        "salesperson_code": salesperson,
    }
    columns = [np.asarray(out[name], dtype=object)[keep] for name in RECORD_FIELDS[:-1]]
    columns.append(opt_out.to_numpy()[keep].astype(int))
    records = [
        (int(row[0]), *(None if value == "" else value for value in row[1:-1]), int(row[-1]))
        for row in zip(*columns, strict=True)
    ]
    segments: list[tuple[int, str, str]] = []
    if "segments" in frame.columns:
        for line, cell in zip(lines[keep], frame["segments"].to_numpy()[keep], strict=True):
            if cell:
                segments.extend((int(line), name.casefold(), name) for name in split_segments(cell))
    rejected = int(bad.sum()) + len(chunk.malformed)
    return ValidatedChunk(records, segments, issues, rejected)
