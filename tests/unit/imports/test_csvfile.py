"""Reading files as Excel and scripts write them."""

from __future__ import annotations

import codecs

import pytest
from segmail.errors import FileRejected
from segmail.imports.csvfile import header_key, iter_chunks, map_header, open_layout

GERMAN = "Ländervorwahl;Vorname;Nachname;Handynummer;E-Mail;Kontonummer;Organisation;Externe ID;Segmente;Sprache;Verkäufer"
ENGLISH = "Country Code,First Name,Last Name,Mobile Number,Email,Account Number,Organization,External ID,Segments,Language,Salesperson"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param("E-Mail", "email", id="german-email"),
        pytest.param(" FIRST_NAME ", "firstname", id="underscore-case-space"),
        pytest.param("Country-Code", "countrycode", id="hyphen"),
        pytest.param("\ufeffCountry Code", "countrycode", id="bom-left-on-header"),
        pytest.param("Ländervorwahl", "ländervorwahl", id="umlaut"),
    ],
)
def test_header_key_ignores_case_spaces_underscores_hyphens(header, expected):
    assert header_key(header) == expected


@pytest.mark.parametrize("header", [GERMAN.split(";"), ENGLISH.split(",")], ids=["german", "english"])
def test_english_and_german_headers_map_to_the_same_fields(header):
    columns, ignored = map_header(header)
    assert set(columns) == {
        "country_code",
        "first_name",
        "last_name",
        "mobile",
        "email",
        "account_number",
        "organization",
        "external_id",
        "segments",
        "language",
        "salesperson",
    }
    assert ignored == []


def test_missing_required_columns_are_named():
    with pytest.raises(FileRejected, match=r"Last Name.*Email or Mobile Number"):
        map_header(["Country Code", "First Name"])


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(["Externe ID", "Segmente"], id="external-id-and-segments"),
        pytest.param(["E-Mail-Adresse", "Organisation"], id="email-only"),
        pytest.param(["Ländervorwahl", "Handynummer", "Sprache"], id="country-and-mobile"),
        pytest.param(["External ID"], id="external-id-only"),
    ],
)
def test_a_header_with_a_column_that_finds_stored_contacts_needs_no_other(header):
    columns, ignored = map_header(header)
    assert (len(columns), ignored) == (len(header), [])


@pytest.mark.parametrize(
    ("header", "missing"),
    [
        pytest.param(["Vorname", "Nachname", "Handynummer"], "Country Code", id="mobile-without-country"),
        pytest.param(
            ["Organisation", "Segmente"],
            "Country Code, First Name, Last Name, Email or Mobile Number",
            id="no-key",
        ),
        pytest.param(["Ländervorwahl", "Vorname", "Nachname"], "Email or Mobile Number", id="no-channel"),
    ],
)
def test_a_header_without_such_a_column_needs_every_new_contact_column(header, missing):
    with pytest.raises(FileRejected) as rejected:
        map_header(header)
    assert str(rejected.value).startswith(f"missing required column(s): {missing} (header has")
    assert str(rejected.value).endswith(
        "a file that only updates stored contacts needs one of External ID, Email, Country Code + Mobile Number instead"
    )


def test_two_columns_for_one_field_reject_the_file():
    with pytest.raises(FileRejected, match="both mean 'Email'"):
        map_header(["Country Code", "First Name", "Last Name", "Email", "E-Mail"])


@pytest.mark.parametrize(
    ("encoding", "delimiter", "bom"),
    [
        pytest.param("utf-8", ",", False, id="utf8-comma"),
        pytest.param("utf-8", ";", True, id="utf8-bom-semicolon"),
        pytest.param("cp1252", ";", False, id="windows1252-semicolon"),
        pytest.param("utf-8", "\t", False, id="utf8-tab"),
        pytest.param("utf-16", "\t", False, id="utf16-tab-unicode-text-export"),
    ],
)
def test_excel_encodings_and_delimiters(tmp_path, encoding, delimiter, bom):
    rows = [
        ["Country Code", "Vorname", "Nachname", "E-Mail"],
        ["DE", "Jürgen", "Größe", "j@example.com"],
        ["FR", "Zoë", "Lefèvre", "z@example.com"],
    ]
    text = "\r\n".join(delimiter.join(r) for r in rows) + "\r\n"
    data = text.encode(encoding)
    if bom:
        data = codecs.BOM_UTF8 + data
    path = tmp_path / "x.csv"
    path.write_bytes(data)
    layout = open_layout(path)
    assert layout.delimiter == delimiter
    (chunk,) = list(iter_chunks(path, layout))
    assert chunk.cells["first_name"] == ["Jürgen", "Zoë"]
    assert chunk.cells["last_name"] == ["Größe", "Lefèvre"]
    assert chunk.line_numbers == [2, 3]


def test_quoted_line_breaks_stay_in_their_row_and_row_numbers_match_a_spreadsheet(write_csv):
    path = write_csv(
        "Country Code,First Name,Last Name,Email,Organization\n"
        'DE,A,One,a@example.com,"Line 1\nLine 2"\n'
        "\n"
        'DE,B,Two,b@example.com,"x, ""quoted"""\n'
        ",,,,\n"
        "DE,C,Three,c@example.com,plain\n"
    )
    (chunk,) = list(iter_chunks(path, open_layout(path)))
    assert chunk.line_numbers == [2, 4, 6]
    assert chunk.cells["organization"] == ["Line 1\r\nLine 2", 'x, "quoted"', "plain"]


def test_a_row_with_extra_cells_is_reported_with_its_row_number(write_csv):
    path = write_csv(
        "Country Code,First Name,Last Name,Email\nDE,A,B,a@example.com\nDE,A,B,c@example.com,extra\n"
    )
    (chunk,) = list(iter_chunks(path, open_layout(path)))
    assert chunk.line_numbers == [2]
    assert chunk.malformed == [(3, "the row has 5 cells but the header has 4")]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(b"", "empty", id="empty"),
        pytest.param(b"\x00\x01\x02binary", "binary", id="binary"),
        pytest.param(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "is a PNG image, not a CSV file", id="png"),
        pytest.param(
            b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", "is a PDF document, not a CSV file", id="pdf"
        ),
        pytest.param(b"PK\x03\x04\x14\x00", "Excel .xlsx workbook is one; save the sheet as CSV", id="xlsx"),
        pytest.param(b"name;value\nx;1\n", "missing required column", id="not-a-contact-file"),
    ],
)
def test_unreadable_files_are_rejected_whole(tmp_path, content, message):
    path = tmp_path / "f.csv"
    path.write_bytes(content)
    with pytest.raises(FileRejected, match=message):
        open_layout(path)


def test_a_record_the_csv_module_cannot_read_is_malformed_and_reading_goes_on(write_csv):
    too_long = "x" * 140_000  # over the csv module's field limit
    path = write_csv(
        "Country Code,First Name,Last Name,Email\n"
        "DE,A,B,a@example.com\n"
        f"DE,{too_long},B,b@example.com\n"
        'DE,"multi\nline",C,c@example.com\n'
        "DE,D,D,d@example.com\n"
    )
    chunks = list(iter_chunks(path, open_layout(path), size=2))
    assert [line for chunk in chunks for line in chunk.line_numbers] == [2, 4, 5]
    assert [m for chunk in chunks for m in chunk.malformed] == [
        (3, "not a valid CSV record: field larger than field limit (131072)")
    ]
    assert [name for chunk in chunks for name in chunk.cells["last_name"]] == ["B", "C", "D"]
