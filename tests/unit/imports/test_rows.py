"""Row validation and normalisation, on tiny in-memory chunks: per field, then whole chunks."""

from __future__ import annotations

import re

import pytest
from segmail.addresses import _FAST_EMAIL, check_email, check_mobile
from segmail.imports.columns import RECORD_FIELDS
from segmail.imports.csvfile import RawChunk
from segmail.imports.rows import (
    RowChecks,
    check_country,
    check_email_column,
    check_language,
    check_lengths,
    check_mobile_column,
    check_names,
    check_opt_out,
    check_reachable,
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


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        pytest.param("+1", "is a dial code; expected an ISO 3166 alpha-2", id="dial-code-plus1"),
        pytest.param("0049", "is a dial code", id="dial-code-0049"),
        pytest.param("Germany", "is not an ISO 3166 alpha-2 country code", id="country-name"),
        pytest.param("", "Country Code is required", id="empty"),
    ],
)
def test_country_must_be_iso_alpha2(value, reason):
    checked = validate_chunk(chunk(country_code=[value], email=["a@example.com"]))
    assert checked.records == []
    assert checked.rejected_rows == 1
    (issue,) = checked.issues
    assert (issue.line_no, issue.column, issue.severity) == (2, "Country Code", "error")
    assert reason in issue.reason


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


def test_invalid_mobile_rejects_the_row_with_the_reason():
    checked = validate_chunk(chunk(mobile=["12"], email=[""]))
    assert checked.rejected_rows == 1
    assert checked.issues[0].column == "Mobile Number"
    assert "not a valid phone number for country DE" in checked.issues[0].reason


def test_email_or_mobile_is_required():
    checked = validate_chunk(chunk(mobile=[""], email=[""]))
    assert [i.reason for i in checked.issues] == ["either Email or Mobile Number is required"]


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
    (issue,) = checked.issues
    assert (issue.line_no, issue.column) == (3, "Email")
    assert issue.reason.startswith("invalid e-mail address:")


@pytest.mark.parametrize(
    ("raw", "tag"),
    [("de", "de"), ("DE-at", "de-AT"), ("en_gb", "en-GB"), ("zh-hant-tw", "zh-Hant-TW"), ("deutsch!", None)],
)
def test_language_tags_are_normalised(raw, tag):
    assert normalize_language(raw) == tag


def test_a_bad_language_only_warns_and_the_row_lands():
    checked = validate_chunk(chunk(email=["a@example.com"], language=["klingon!"]))
    assert record(checked)["language"] is None
    assert [i.severity for i in checked.issues] == ["warning"]


def test_opt_out_words_in_english_and_german():
    checked = validate_chunk(
        chunk(
            email=[f"{i}@example.com" for i in range(4)],
            first_name=["A"] * 4,
            last_name=["B"] * 4,
            country_code=["DE"] * 4,
            email_opt_out=["Ja", "yes", "", "nein"],
        )
    )
    assert [r[-1] for r in checked.records] == [1, 1, 0, 0]


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
    assert rows.bad.tolist() == [False, True, True, True]
    # Empty cells first, then dial codes, then other values.
    assert [(line, reason) for line, _, _, reason in found(rows)] == [
        (4, "Country Code is required"),
        (3, "'+1' is a dial code; expected an ISO 3166 alpha-2 country code such as US, CA, BR, AU"),
        (5, "'Germany' is not an ISO 3166 alpha-2 country code (such as US, CA, BR, AU)"),
    ]


def test_check_names_requires_first_and_last_name():
    rows = checks(first_name=["A", ""], last_name=["", "B"])
    check_names(rows)
    assert found(rows) == [
        (3, "First Name", "error", "First Name is required"),
        (2, "Last Name", "error", "Last Name is required"),
    ]
    assert rows.bad.tolist() == [True, True]


def test_check_lengths_rejects_cells_over_the_limit_of_their_column_only():
    rows = checks(organization=["O" * 300, "O" * 301], salesperson=["S" * 51, "S" * 50])
    check_lengths(rows)
    assert found(rows) == [
        (3, "Organization", "error", "longer than 300 characters"),
        (2, "Salesperson", "error", "longer than 50 characters"),
    ]
    assert rows.bad.tolist() == [True, True]


def test_check_lengths_counts_characters_after_trimming():
    rows = checks(account_number=["  " + "9" * 100 + "  "])
    check_lengths(rows)
    assert rows.issues == []


def test_check_email_column_keeps_fast_addresses_and_normalises_the_rest():
    rows = checks(email=["Anna@EXAMPLE.com", "ÄÖ@Bücher.de", "", "user@example.test"])
    emails = check_email_column(rows)
    assert emails[:3] == ["Anna@EXAMPLE.com", "ÄÖ@bücher.de", ""]
    # The fast pattern accepts it, but a special-use TLD goes to email-validator, which rejects it.
    ((line, column, severity, reason),) = found(rows)
    assert (line, column, severity) == (5, "Email", "error")
    assert "special-use or reserved name" in reason
    assert rows.bad.tolist() == [False, False, False, True]


def test_check_mobile_column_reads_numbers_only_in_a_valid_country():
    rows = checks(mobile=["0151 23456789", "0151 23456789", "12", ""])
    country, valid = check_country(rows)
    valid[1] = False  # as if the country of row 3 had been rejected
    mobiles = check_mobile_column(rows, country, valid)
    assert mobiles == ["+4915123456789", "", "", ""]
    assert found(rows) == [(4, "Mobile Number", "error", "not a valid phone number for country DE")]


def test_check_reachable_needs_an_email_or_a_mobile_cell():
    rows = checks(email=["a@example.com", "", ""], mobile=["", "0151 23456789", ""])
    check_reachable(rows)
    assert found(rows) == [(4, "Email", "error", "either Email or Mobile Number is required")]


def test_check_reachable_without_a_mobile_column():
    rows = checks(email=["", "a@example.com"])
    check_reachable(rows)
    assert rows.bad.tolist() == [True, False]


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


def test_a_row_with_several_errors_lists_them_in_field_order_and_counts_once():
    checked = validate_chunk(
        chunk(country_code=["+1"], first_name=[""], email=["bad@@example.com"], language=["!"])
    )
    assert [i.column for i in checked.issues] == ["Country Code", "First Name", "Email", "Language"]
    assert (checked.rejected_rows, checked.records, checked.segments) == (1, [], [])


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
    }


def test_segments_of_rejected_rows_are_dropped():
    checked = validate_chunk(
        chunk(email=["a@example.com", ""], segments=["VIP; news", "VIP"], first_name=["A", "A"])
    )
    assert checked.segments == [(2, "vip", "VIP"), (2, "news", "news")]


def test_malformed_records_count_as_rejected_rows_with_their_reason():
    raw = chunk(email=["a@example.com"])
    raw.malformed.append((3, "the row has 5 cells but the header has 4"))
    checked = validate_chunk(raw)
    assert checked.rejected_rows == 1
    assert len(checked.records) == 1
    assert [(i.line_no, i.column, i.severity) for i in checked.issues] == [(3, None, "error")]
