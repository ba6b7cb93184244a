"""The columns of a contact file, defined once.

Header aliases, the names used in messages and written by `contacts export`, length limits, the
staging table and the contact columns an import writes are all derived from `COLUMNS`; what a new
contact needs and which columns find stored contacts are `NEW_CONTACT_NEEDS` and `KEY_COLUMNS`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class Column:
    key: str  # the field's name in code (RawChunk.cells, export records)
    display: str  # the header `contacts export` writes and messages name; also accepted as header
    aliases: tuple[str, ...] = ()  # other accepted headers, English and German (matched by `header_key`)
    max_length: int | None = None  # the width of its staging and contact column: a longer value is invalid
    rejects_row: bool = False  # an invalid value rejects the row; else only the cell is ignored
    contact: str | None = None  # the segmail_contacts column it is stored in (None: memberships)
    stage: tuple[str, ...] = ()  # staging columns, when they are not just `contact`
    sql_type: str | None = None  # of its staging column(s)

    @property
    def headers(self) -> tuple[str, ...]:
        """Every header that means this column."""
        return (self.display, *self.aliases)

    @property
    def staged(self) -> tuple[str, ...]:
        """The staging columns its checked value goes to."""
        return self.stage or ((self.contact,) if self.contact else ())


SEGMENT_SEPARATOR = ";"  # several segments in one cell: `Segment 1; Segment 2`

# In the order `contacts export` writes them.
COLUMNS: tuple[Column, ...] = (
    Column(
        key="external_id",
        display="External ID",
        aliases=("Externe ID", "ID"),
        max_length=200,
        rejects_row=True,  # a key: ignoring it could match the row to another contact
        contact="external_id",
        sql_type="VARCHAR(200)",
    ),
    Column(
        key="email",
        display="Email",
        aliases=("E-Mail", "Email Address", "Mail", "E-Mail-Adresse", "Mailadresse"),
        max_length=320,
        contact="email",
        stage=("email", "email_key"),  # email_key: lower-cased, for matching
        sql_type="VARCHAR(320)",
    ),
    Column(
        key="country_code",
        display="Country Code",
        aliases=(
            "Country",
            "Ländervorwahl",
            "Ländercode",
            "Land",
            "Landescode",
            "Laendervorwahl",
            "Laendercode",
        ),
        contact="country_code",
        sql_type="VARCHAR(2)",
    ),
    Column(
        key="mobile",
        display="Mobile Number",
        aliases=(
            "Mobile",
            "Mobile Phone",
            "Handynummer",
            "Handy",
            "Mobilnummer",
            "Mobiltelefon",
            "Mobilfunknummer",
        ),
        contact="mobile_e164",
        sql_type="VARCHAR(20)",
    ),
    Column(
        key="first_name",
        display="First Name",
        aliases=("Vorname", "Given Name"),
        max_length=200,
        contact="first_name",
        sql_type="VARCHAR(200)",
    ),
    Column(
        key="last_name",
        display="Last Name",
        aliases=("Nachname", "Surname", "Family Name", "Familienname"),
        max_length=200,
        contact="last_name",
        sql_type="VARCHAR(200)",
    ),
    Column(
        key="account_number",
        display="Account Number",
        aliases=("Account", "Kontonummer", "Kundennummer"),
        max_length=100,
        contact="account_number",
        sql_type="VARCHAR(100)",
    ),
    Column(
        key="organization",
        display="Organization",
        aliases=("Organisation", "Company", "Firma", "Unternehmen"),
        max_length=300,
        contact="organization",
        sql_type="VARCHAR(300)",
    ),
    Column(
        key="language",
        display="Language",
        aliases=("Sprache", "Language Code", "Sprachcode"),
        max_length=35,
        contact="language",
        sql_type="VARCHAR(35)",
    ),
    Column(
        key="salesperson",
        display="Salesperson",
        aliases=("Salesperson Code", "Verkäufer", "Verkäufercode", "Verkaeufer", "Verkaeufercode"),
        max_length=50,
        contact="salesperson_code",
        sql_type="VARCHAR(50)",
    ),
    Column(
        key="segments",
        display="Segments",
        aliases=("Segment", "Segmente"),  # names that are no segment (too long ones too) only warn
    ),
    Column(
        key="email_opt_out",
        display="Email Opt Out",
        aliases=("Opt Out", "E-Mail-Abmeldung", "Abgemeldet"),
        contact="email_opt_out",
        stage=("opt_out",),  # 1 = opt out; never clears a stored opt-out
        sql_type="INTEGER",
    ),
    Column(
        key="sms_opt_out",
        display="SMS Opt Out",
        aliases=("SMS-Abmeldung", "SMS abgemeldet"),
        contact="sms_opt_out",
        stage=("sms_opt_out",),  # 1 = opt out of SMS; never clears a stored one; apart from e-mail's
        sql_type="INTEGER",
    ),
)

BY_KEY: dict[str, Column] = {c.key: c for c in COLUMNS}
DISPLAY_NAMES: dict[str, str] = {c.key: c.display for c in COLUMNS}

# What a contact needs after the row is applied (GUIDE §2), one field of each group. A stored
# contact has them, so a row that matches one may leave them empty (or invalid: the cell is
# ignored); a row that creates a contact without them is rejected.
NEW_CONTACT_NEEDS: tuple[tuple[str, ...], ...] = (
    ("country_code",),
    ("first_name",),
    ("last_name",),
    ("email", "mobile"),
)
NEEDED: frozenset[str] = frozenset(name for group in NEW_CONTACT_NEEDS for name in group)
# Columns that find stored contacts (GUIDE §2 matching; a mobile is read in the row's country). A
# header with one of these sets may leave out any other column; a header without one must have a
# column of every NEW_CONTACT_NEEDS group, as all its rows create contacts.
KEY_COLUMNS: tuple[tuple[str, ...], ...] = (("external_id",), ("email",), ("country_code", "mobile"))
EXPORT_FIELDS: tuple[str, ...] = tuple(c.key for c in COLUMNS)

# The staging table, one row per checked record; records are tuples in this order.
STAGE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("line_no", "INTEGER PRIMARY KEY"),
    *((name, c.sql_type or "") for c in COLUMNS for name in c.staged),
)
RECORD_FIELDS: tuple[str, ...] = tuple(name for name, _ in STAGE_COLUMNS)
# Opt-outs: set by a yes, never cleared by an import (their own rule in imports.apply); staged as 0/1.
OPT_OUTS: tuple[str, ...] = ("email_opt_out", "sms_opt_out")
OPT_OUT_STAGES: tuple[str, ...] = tuple(name for c in COLUMNS if c.key in OPT_OUTS for name in c.staged)
# Staged columns copied to segmail_contacts when not empty.
OVERWRITTEN: tuple[str, ...] = tuple(name for c in COLUMNS if c.key not in OPT_OUTS for name in c.staged)
