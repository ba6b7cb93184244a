"""Row validation and normalisation, on tiny in-memory chunks."""

from __future__ import annotations

import re

import pytest
from segmail.imports.csvfile import RawChunk
from segmail.imports.rows import (
    _FAST_EMAIL,
    RECORD_FIELDS,
    check_email,
    check_mobile,
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
