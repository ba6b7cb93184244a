"""Row validation and normalisation, on tiny in-memory chunks: per field, then whole chunks.

Whether a row may leave a field empty, or whether an ignored cell rejects its row, is decided after
matching (tests/integration/imports/test_pipeline.py); here cells are checked on their own.
"""

from __future__ import annotations

import re

import pytest
from segmail.addresses import _FAST_EMAIL, check_email, check_mobile
from segmail.imports.columns import COLUMNS, RECORD_FIELDS
from segmail.imports.csvfile import RawChunk
from segmail.imports.rows import (
    RowChecks,
    check_country,
    check_email_column,
    check_language,
    check_lengths,
    check_mobile_column,
    check_opt_out,
    split_segments,
    validate_chunk,
)
from segmail.language import normalize_language
from segmail.spreadsheet import spreadsheet_safe


def chunk(**columns) -> RawChunk:
    n = len(next(iter(columns.values())))
    base = {"country_code": ["DE"] * n, "first_name": ["A"] * n, "last_name": ["B"] * n}
    base.update(columns)
    return RawChunk(list(range(2, n + 2)), base, [])


def record(checked, i=0) -> dict:
    return dict(zip(RECORD_FIELDS, checked.records[i], strict=True))


def checks(**columns) -> RowChecks:
    return RowChecks(chunk(**columns))


def found(rows: RowChecks) -> list[tuple]:
    return [(i.line_no, i.column, i.severity, i.reason) for i in rows.issues]


def ignored(rows) -> list[tuple]:
    """(line, column, reason) of the ignored cells of fields a new contact needs."""
    return [(c.line_no, c.column_name, c.reason) for c in rows.cells]


def lengths(rows: RowChecks, **normalised) -> None:
    """check_lengths on the cells as they are, but for the `normalised` staged columns."""
    check_lengths(rows, {name: rows.column(c.key) for c in COLUMNS for name in c.staged} | normalised)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        pytest.param("+1", "is a dial code; expected an ISO 3166 alpha-2", id="dial-code-plus1"),
        pytest.param("0049", "is a dial code", id="dial-code-0049"),
        pytest.param("Germany", "is not an ISO 3166 alpha-2 country code", id="country-name"),
    ],
)
def test_a_country_that_is_not_iso_alpha2_is_ignored_with_the_reason(value, reason):
    checked = validate_chunk(chunk(country_code=[value], email=["a@example.com"]))
    assert (checked.rejected_rows, checked.issues) == (0, [])
    assert record(checked)["country_code"] is None  # the stored country stays; a new contact is rejected
    ((line, column, why),) = ignored(checked)
    assert (line, column) == (2, "Country Code")
    assert reason in why
    assert checked.cells[0].warning == f"{why}; Country Code left unchanged"


def test_empty_cells_are_not_issues_before_matching():
    checked = validate_chunk(
        chunk(country_code=[""], first_name=[""], last_name=[""], email=[""], mobile=[""])
    )
    assert (checked.rejected_rows, checked.issues, checked.cells) == (0, [], [])
    assert record(checked)["country_code"] is None


def test_lower_case_country_is_accepted_and_upper_cased():
    checked = validate_chunk(chunk(country_code=["ca"], email=["a@example.com"]))
    assert record(checked)["country_code"] == "CA"


@pytest.mark.parametrize(
    ("country", "raw", "e164"),
    [
        pytest.param("DE", "0151 2345 6789", "+4915123456789", id="de-national"),
        pytest.param("US", "(415) 555-2671", "+14155552671", id="us-national"),
        pytest.param("BR", "+55 11 91234-5678", "+5511912345678", id="br-international"),
        pytest.param("AU", "0412 345 678", "+61412345678", id="au-national"),
    ],
)
def test_mobile_numbers_are_normalised_to_e164_with_the_rows_country(country, raw, e164):
    assert check_mobile(raw, country) == (e164, None)


def test_an_invalid_mobile_is_ignored_and_the_rest_of_the_row_is_staged():
    checked = validate_chunk(chunk(mobile=["12"], email=["a@example.com"]))
    assert checked.rejected_rows == 0
    assert (record(checked)["mobile_e164"], record(checked)["email"]) == (None, "a@example.com")
    assert ignored(checked) == [(2, "Mobile Number", "not a valid phone number for country DE")]


@pytest.mark.parametrize(
    "address",
    [
        "a@example.com",
        "First.Last+tag@sub.example.co.uk",
        "o'brien@example.ie",
        "x_y-z@ex-ample.de",
        "a@b.museum",
        "ÄÖ@bücher.de",
        "user@example.test",
        "a..b@example.com",
        "a@-example.com",
        "no-at-sign.example.com",
        "a@example",
        "a@example.c",
    ],
)
def test_fast_email_pattern_never_accepts_what_email_validator_rejects(address):
    if re.fullmatch(_FAST_EMAIL, address) and not address.lower().endswith(".test"):
        assert check_email(address)[1] is None


def test_email_key_is_lower_case_and_bad_addresses_are_explained():
    checked = validate_chunk(
        chunk(
            email=["Anna.Muster@Example.COM", "bad@@example.com"],
            first_name=["A", "B"],
            last_name=["A", "B"],
            country_code=["DE", "DE"],
        )
    )
    assert record(checked)["email"] == "Anna.Muster@Example.COM"
    assert record(checked)["email_key"] == "anna.muster@example.com"
    assert (record(checked, 1)["email"], record(checked, 1)["email_key"]) == (None, None)
    ((line, column, reason),) = ignored(checked)
    assert (line, column) == (3, "Email")
    assert reason.startswith("invalid e-mail address:")


@pytest.mark.parametrize(
    ("raw", "tag"),
    [("de", "de"), ("DE-at", "de-AT"), ("en_gb", "en-GB"), ("zh-hant-tw", "zh-Hant-TW"), ("deutsch!", None)],
)
def test_language_tags_are_normalised(raw, tag):
    assert normalize_language(raw) == tag


def test_a_bad_language_only_warns_and_the_row_lands():
    checked = validate_chunk(chunk(email=["a@example.com"], language=["klingon!"]))
    assert record(checked)["language"] is None
    assert [(i.severity, i.reason) for i in checked.issues] == [
        ("warning", "'klingon!' is not a language code such as de, en-US or fr-CA; Language left unchanged")
    ]


def test_a_language_tag_longer_than_its_column_is_ignored_with_a_warning():
    tag = "de-" + "-".join(["abcdefgh"] * 4)  # a valid-looking BCP 47 tag of 38 characters
    checked = validate_chunk(chunk(email=["a@example.com", "b@example.com"], language=[tag, "de-AT"]))
    assert [r[RECORD_FIELDS.index("language")] for r in checked.records] == [None, "de-AT"]
    assert [(i.line_no, i.column, i.severity, i.reason) for i in checked.issues] == [
        (2, "Language", "warning", "longer than 35 characters; Language left unchanged")
    ]


def test_opt_out_words_in_english_and_german():
    checked = validate_chunk(
        chunk(
            email=[f"{i}@example.com" for i in range(4)],
            first_name=["A"] * 4,
            last_name=["B"] * 4,
            country_code=["DE"] * 4,
            email_opt_out=["Ja", "yes", "", "nein"],
            sms_opt_out=["", "x", "wahr", "no"],
        )
    )
    assert [record(checked, i)["opt_out"] for i in range(4)] == [1, 1, 0, 0]
    assert [record(checked, i)["sms_opt_out"] for i in range(4)] == [0, 1, 1, 0]  # its own column


def test_an_sms_opt_out_that_is_no_yes_or_no_only_warns():
    checked = validate_chunk(chunk(email=["a@example.com"], sms_opt_out=["maybe"]))
    assert record(checked)["sms_opt_out"] == 0
    assert [(i.column, i.severity, i.reason) for i in checked.issues] == [
        ("SMS Opt Out", "warning", "'maybe' is not yes/no; opt-out left unchanged")
    ]


def test_segments_cell_splits_on_semicolons_and_drops_repeats():
    assert split_segments(" Segment 1; Segment 2;;segment 1 ; Segment 3 ") == [
        "Segment 1",
        "Segment 2",
        "Segment 3",
    ]


@pytest.mark.parametrize(
    ("cell", "safe"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+1", "'+1"),
        ("-2", "'-2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("plain", "plain"),
        (None, ""),
    ],
)
def test_report_cells_cannot_inject_formulas(cell, safe):
    assert spreadsheet_safe(cell) == safe


# ---------------------------------------------------------------- one field at a time


def test_check_country_upper_cases_and_says_which_codes_are_valid():
    rows = checks(country_code=["de", "+1", "", "Germany"])
    country, valid = check_country(rows)
    assert country.tolist() == ["DE", "+1", "", "GERMANY"]
    assert valid.tolist() == [True, False, False, False]
    assert not rows.bad.any()
    assert rows.ignored["country_code"].tolist() == [False, True, False, True]
    # Dial codes first, then other values; an empty cell is no issue here.
    assert ignored(rows) == [
        (
            3,
            "Country Code",
            "'+1' is a dial code; expected an ISO 3166 alpha-2 country code such as US, CA, BR, AU",
        ),
        (5, "Country Code", "'Germany' is not an ISO 3166 alpha-2 country code (such as US, CA, BR, AU)"),
    ]


def test_check_lengths_ignores_optional_cells_over_the_limit_of_their_column_only():
    rows = checks(organization=["O" * 300, "O" * 301], salesperson=["S" * 51, "S" * 50])
    lengths(rows)
    assert found(rows) == [
        (3, "Organization", "warning", "longer than 300 characters; Organization left unchanged"),
        (2, "Salesperson", "warning", "longer than 50 characters; Salesperson left unchanged"),
    ]
    assert not rows.bad.any()


def test_check_lengths_rejects_a_row_whose_external_id_is_too_long():
    rows = checks(external_id=["E" * 201, "E" * 200])
    lengths(rows)
    assert found(rows) == [(2, "External ID", "error", "longer than 200 characters")]
    assert rows.bad.tolist() == [True, False]


def test_check_lengths_leaves_names_too_long_to_the_new_contact_rule():
    rows = checks(first_name=["F" * 201], last_name=["L" * 200])
    lengths(rows)
    assert (found(rows), ignored(rows)) == ([], [(2, "First Name", "longer than 200 characters")])


def test_check_lengths_measures_the_normalised_value():
    rows = checks(salesperson=["ß" * 50])  # upper-cased it is "SS" * 50: too long for the column
    lengths(rows, salesperson_code=rows.column("salesperson").str.upper())
    assert [i.reason for i in rows.issues] == ["longer than 50 characters; Salesperson left unchanged"]


def test_check_lengths_counts_characters_after_trimming():
    rows = checks(account_number=["  " + "9" * 100 + "  "])
    lengths(rows)
    assert rows.issues == []


def test_check_email_column_keeps_fast_addresses_and_normalises_the_rest():
    rows = checks(email=["Anna@EXAMPLE.com", "ÄÖ@Bücher.de", "", "user@example.test"])
    emails = check_email_column(rows)
    assert emails[:3] == ["Anna@EXAMPLE.com", "ÄÖ@bücher.de", ""]
    # The fast pattern accepts it, but a special-use TLD goes to email-validator, which rejects it.
    ((line, column, reason),) = ignored(rows)
    assert (line, column) == (5, "Email")
    assert "special-use or reserved name" in reason
    assert rows.ignored["email"].tolist() == [False, False, False, True]
    assert not rows.bad.any()


def test_check_mobile_column_reads_numbers_only_in_a_valid_country():
    rows = checks(mobile=["0151 23456789", "0151 23456789", "12", ""])
    country, valid = check_country(rows)
    valid[1] = False  # as if the country of row 3 were empty or invalid
    mobiles = check_mobile_column(rows, country, valid)
    assert mobiles == ["+4915123456789", "", "", ""]
    assert ignored(rows) == [
        (
            3,
            "Mobile Number",
            "not read: a mobile number is read in the row's Country Code, which is empty or invalid",
        ),
        (4, "Mobile Number", "not a valid phone number for country DE"),
    ]
    assert not rows.bad.any()


def test_check_language_normalises_and_only_warns_on_bad_tags():
    rows = checks(language=["DE-at", "", "klingon!"])
    assert check_language(rows).tolist() == ["de-AT", "", ""]
    ((line, column, severity, _),) = found(rows)
    assert (line, column, severity) == (4, "Language", "warning")
    assert not rows.bad.any()


def test_check_opt_out_only_warns_on_words_that_are_not_yes_or_no():
    rows = checks(email_opt_out=["JA", "falsch", "maybe", "opted out"])
    assert check_opt_out(rows).tolist() == [True, False, False, True]
    assert found(rows) == [(4, "Email Opt Out", "warning", "'maybe' is not yes/no; opt-out left unchanged")]
    assert not rows.bad.any()


def test_cells_are_trimmed_and_spreadsheet_escapes_undone_before_any_check():
    rows = checks(organization=["  '=Evil  ", "'plain"])
    assert rows.column("organization").tolist() == ["=Evil", "'plain"]
    assert rows.column("external_id").tolist() == ["", ""]  # a column the file does not have


# ---------------------------------------------------------------- whole chunks


def test_a_row_with_several_bad_cells_lists_them_in_field_order_and_is_staged():
    checked = validate_chunk(
        chunk(
            country_code=["+1"], first_name=[""], email=["bad@@example.com"], language=["!"], segments=["VIP"]
        )
    )
    assert [c.column_name for c in checked.cells] == ["Country Code", "Email"]
    assert [(i.column, i.severity) for i in checked.issues] == [("Language", "warning")]
    assert (checked.rejected_rows, len(checked.records), checked.segments) == (0, 1, [(2, "vip", "VIP")])


def test_a_row_with_an_error_counts_once_and_its_ignored_cells_are_still_reported():
    checked = validate_chunk(chunk(external_id=["E" * 201], country_code=["+1"], email=["a@example.com"]))
    assert (checked.rejected_rows, checked.records) == (1, [])
    assert [i.column for i in checked.issues] == ["External ID"]
    assert [c.column_name for c in checked.cells] == ["Country Code"]


def test_records_hold_none_for_empty_cells_and_upper_case_salesperson_codes():
    checked = validate_chunk(chunk(email=["a@example.com"], salesperson=["jd"], organization=[""]))
    assert record(checked) == {
        "line_no": 2,
        "external_id": None,
        "email": "a@example.com",
        "email_key": "a@example.com",
        "country_code": "DE",
        "mobile_e164": None,
        "first_name": "A",
        "last_name": "B",
        "account_number": None,
        "organization": None,
        "language": None,
        "salesperson_code": "JD",
        "opt_out": 0,
        "sms_opt_out": 0,
    }


def test_segments_of_rejected_rows_are_dropped():
    checked = validate_chunk(
        chunk(external_id=["E1", "E" * 201], segments=["VIP; news", "VIP"], first_name=["A", "A"])
    )
    assert checked.segments == [(2, "vip", "VIP"), (2, "news", "news")]


def test_malformed_records_count_as_rejected_rows_with_their_reason():
    raw = chunk(email=["a@example.com"])
    raw.malformed.append((3, "the row has 5 cells but the header has 4"))
    checked = validate_chunk(raw)
    assert checked.rejected_rows == 1
    assert len(checked.records) == 1
    assert [(i.line_no, i.column, i.severity) for i in checked.issues] == [(3, None, "error")]
