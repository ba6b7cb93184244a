"""The one definition of a contact file's columns, and what is derived from it."""

from __future__ import annotations

import itertools
import re

import pytest
from segmail.imports.columns import (
    COLUMNS,
    DISPLAY_NAMES,
    EXPORT_FIELDS,
    OVERWRITTEN,
    RECORD_FIELDS,
    STAGE_COLUMNS,
)
from segmail.imports.csvfile import header_key, map_header
from segmail.store.models import Contact

REQUIRED_HEADER = ["Country Code", "First Name", "Last Name", "Email"]


@pytest.mark.parametrize(
    ("column", "title"),
    [pytest.param(c.key, title, id=f"{c.key}:{title}") for c in COLUMNS for title in c.headers],
)
def test_every_spelling_of_a_column_maps_to_it(column, title):
    header = [h for h in REQUIRED_HEADER if h != DISPLAY_NAMES[column]]
    columns, ignored = map_header([*header, title.upper()])
    assert columns[column] == len(header)
    assert ignored == []


def test_no_spelling_means_two_columns():
    for a, b in itertools.combinations(COLUMNS, 2):
        assert not {header_key(t) for t in a.headers} & {header_key(t) for t in b.headers}, (a.key, b.key)


def test_an_exported_header_imports_back_to_the_same_fields():
    header = [DISPLAY_NAMES[name] for name in EXPORT_FIELDS]
    columns, _ = map_header(header)
    assert list(columns) == list(EXPORT_FIELDS)


def test_a_cell_that_passes_its_length_check_fits_its_staging_column():
    sizes = {name: sql_type for name, sql_type in STAGE_COLUMNS}
    for column in COLUMNS:
        for name in column.staged if column.max_length else ():
            (size,) = re.fullmatch(r"VARCHAR\((\d+)\)", sizes[name]).groups()
            assert column.max_length <= int(size), name


def test_every_text_a_contact_stores_is_bounded_by_its_column_width():
    """A value that passes validation never fails the file on PostgreSQL (VARCHAR(n) is enforced there)."""
    validated_to_fit = {"country_code", "mobile"}  # ISO 3166 alpha-2; E.164 has at most 16 characters
    for column in COLUMNS:
        if column.contact and column.sql_type.startswith("VARCHAR") and column.key not in validated_to_fit:
            width = Contact.__table__.columns[column.contact].type.length
            assert column.max_length == width, column.key


def test_german_spellings_of_every_column_are_accepted():
    header = "Ländervorwahl;Vorname;Nachname;E-Mail-Adresse;Handynummer;Kontonummer;Organisation;Externe ID;Segmente;Sprache;Verkäufer;E-Mail-Abmeldung;SMS-Abmeldung"
    columns, ignored = map_header(header.split(";"))
    assert (set(columns), ignored) == (set(EXPORT_FIELDS), [])


def test_records_are_staged_in_order_with_the_line_first_and_the_opt_outs_last():
    assert RECORD_FIELDS == tuple(name for name, _ in STAGE_COLUMNS)
    assert (RECORD_FIELDS[0], RECORD_FIELDS[-2:]) == ("line_no", ("opt_out", "sms_opt_out"))
    assert "email_key" in RECORD_FIELDS


def test_what_an_import_writes_and_an_export_reads_are_contact_columns():
    stored = set(Contact.__table__.columns.keys())
    assert set(OVERWRITTEN) <= stored
    assert {c.contact for c in COLUMNS if c.contact} <= stored
    assert "opt_out" not in OVERWRITTEN  # set by its own rule: never cleared
