"""GUIDE.md §2: required fields hold for the contact *after* the row is applied; an invalid cell is a
warning unless it leaves a new contact without what it needs. On SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from contacts_support import contact_rows, create_segments, issues, segments_of
from segmail.contacts import salespeople
from segmail.imports.pipeline import import_file

HEADER = "Country Code,First Name,Last Name,Email,Mobile Number,External ID,Segments,Language,Organization"
GERMAN = (
    "Ländervorwahl;Vorname;Nachname;E-Mail-Adresse;Handynummer;Kontonummer;Organisation;Externe ID;Segmente"
)
SEED = (
    f"{HEADER}\n"
    "DE,Anna,Alt,anna@example.com,0151 23456789,E1,VIP,de-AT,Acme\n"
    "DE,Bernd,Alt,bernd@example.com,,E2,Newsletter,de,\n"
)
BOOKKEEPING = ("updated_at", "last_import_id")


@pytest.fixture
def seeded(engine, write_csv):
    create_segments(engine)
    assert import_file(write_csv(SEED, name="seed.csv"), engine=engine).created == 2


def stored(engine) -> dict[str, dict]:
    """external ID -> the contact's columns, without the import bookkeeping."""
    return {
        c["external_id"]: {k: v for k, v in c.items() if k not in BOOKKEEPING} for c in contact_rows(engine)
    }


def test_a_german_update_file_with_empty_email_and_mobile_updates_the_matched_contact(
    engine, seeded, write_csv
):
    before = stored(engine)
    result = import_file(
        write_csv(f"{GERMAN}\nDE;Anna;Neu;;;K-1;;E1;Newsletter\n", name="update.csv"), engine=engine
    )
    assert (result.updated, result.rejected, result.warnings) == (1, 0, 0)
    anna = stored(engine)["E1"]
    assert (anna["last_name"], anna["account_number"]) == ("Neu", "K-1")
    # Empty cells keep the stored values, the channels included.
    assert (anna["email"], anna["mobile_e164"], anna["organization"]) == (
        before["E1"]["email"],
        "+4915123456789",
        "Acme",
    )
    assert segments_of(engine)["E1"] == ["Newsletter", "VIP"]


def test_a_replace_file_of_external_ids_and_segments_moves_customers(engine, seeded, write_csv):
    before = stored(engine)
    path = write_csv('Externe ID;Segmente\nE1;Newsletter\nE2;"VIP; Service Plan"\n', name="moves.csv")
    result = import_file(path, mode="replace", engine=engine)
    assert (result.status, result.updated, result.rejected, result.warnings) == ("succeeded", 2, 0, 0)
    assert segments_of(engine) == {"E1": ["Newsletter"], "E2": ["Service Plan", "VIP"]}
    assert stored(engine) == before  # nothing but the memberships changed
    again = import_file(path, mode="replace", engine=engine)
    assert (again.updated, again.unchanged) == (0, 2)


def test_a_row_of_an_update_file_that_matches_nobody_is_rejected_as_an_incomplete_new_contact(
    engine, seeded, write_csv
):
    result = import_file(
        write_csv("Externe ID;Segmente\nE1;Newsletter\nE9;VIP\n;VIP\n", name="moves.csv"),
        mode="replace",
        engine=engine,
    )
    assert (result.rows, result.updated, result.created, result.rejected) == (3, 1, 0, 2)
    needs = [
        ("Country Code", "error", "a new contact needs Country Code"),
        ("First Name", "error", "a new contact needs First Name"),
        ("Last Name", "error", "a new contact needs Last Name"),
        ("Email", "error", "a new contact needs Email or Mobile Number"),
    ]
    assert issues(engine, result.import_run_id) == [(line, *need) for line in (3, 4) for need in needs]
    assert segments_of(engine) == {"E1": ["Newsletter"], "E2": ["Newsletter"]}


def test_a_new_contact_missing_one_field_is_rejected_naming_that_column(engine, seeded, write_csv):
    result = import_file(
        write_csv(
            f"{HEADER}\nDE,Neu,,neu@example.com,,E3,,,\nDE,Carla,Neu,,0151 11111111,E4,,,\n", name="n.csv"
        ),
        engine=engine,
    )
    assert (result.created, result.rejected) == (1, 1)
    assert issues(engine, result.import_run_id) == [
        (2, "Last Name", "error", "a new contact needs Last Name")
    ]
    assert sorted(stored(engine)) == ["E1", "E2", "E4"]


def test_an_invalid_mobile_beside_a_good_email_warns_and_the_row_lands(engine, seeded, write_csv):
    result = import_file(
        write_csv(
            f"{HEADER}\n"
            "DE,Anna,Alt,anna@example.com,12,E1,,,Neue GmbH\n"  # stored mobile stays
            "DE,Dora,Neu,dora@example.com,12,E5,VIP,,\n",  # created without a mobile
            name="m.csv",
        ),
        engine=engine,
    )
    assert (result.updated, result.created, result.rejected, result.warnings) == (1, 1, 0, 2)
    warning = (
        "Mobile Number",
        "warning",
        "not a valid phone number for country DE; Mobile Number left unchanged",
    )
    assert issues(engine, result.import_run_id) == [(2, *warning), (3, *warning)]
    contacts = stored(engine)
    assert (contacts["E1"]["mobile_e164"], contacts["E1"]["organization"]) == ("+4915123456789", "Neue GmbH")
    assert (contacts["E5"]["email"], contacts["E5"]["mobile_e164"]) == ("dora@example.com", None)
    assert segments_of(engine)["E5"] == ["VIP"]


def test_an_invalid_email_of_a_matched_contact_warns_and_keeps_the_stored_email(engine, seeded, write_csv):
    """Decision: the contact after the row keeps its stored e-mail, so it stays reachable: a warning."""
    result = import_file(
        write_csv(f"{HEADER}\nDE,Anna,Neu,anna@@example.com,,E1,,,\n", name="e.csv"), engine=engine
    )
    assert (result.updated, result.rejected, result.warnings) == (1, 0, 1)
    ((line, column, severity, reason),) = issues(engine, result.import_run_id)
    assert (line, column, severity) == (2, "Email", "warning")
    assert reason.startswith("invalid e-mail address:") and reason.endswith("; Email left unchanged")
    assert (stored(engine)["E1"]["email"], stored(engine)["E1"]["last_name"]) == ("anna@example.com", "Neu")


def test_an_invalid_value_that_leaves_a_new_contact_unreachable_rejects_the_row(engine, seeded, write_csv):
    result = import_file(
        write_csv(
            f"{HEADER}\n"
            "DE,Neu,Eins,neu@@example.com,,E6,,,\n"  # new: no valid e-mail, no mobile
            "DE,Neu,Zwei,neu@@example.com,,,,,\n",  # no key at all: cannot match, cannot be created
            name="u.csv",
        ),
        engine=engine,
    )
    assert (result.created, result.rejected) == (0, 2)
    found = issues(engine, result.import_run_id)
    assert [(line, column, severity) for line, column, severity, _ in found] == [
        (2, "Email", "error"),
        (3, "Email", "error"),
    ]
    assert all(
        r.startswith("a new contact needs Email or Mobile Number: invalid e-mail address:") for *_, r in found
    )
    assert sorted(stored(engine)) == ["E1", "E2"]


def test_an_invalid_country_of_a_matched_contact_warns_and_its_mobile_is_not_read(engine, seeded, write_csv):
    result = import_file(
        write_csv(f"{HEADER}\n+49,Anna,Neu,,0151 99999999,E1,,,\n+1,New,Person,new@example.com,,,,,\n"),
        engine=engine,
    )
    assert (result.updated, result.rejected) == (1, 1)
    assert [
        (line, column, severity) for line, column, severity, _ in issues(engine, result.import_run_id)
    ] == [
        (2, "Country Code", "warning"),
        (2, "Mobile Number", "warning"),
        (3, "Country Code", "error"),
    ]
    anna = stored(engine)["E1"]
    assert (anna["country_code"], anna["mobile_e164"], anna["last_name"]) == ("DE", "+4915123456789", "Neu")


def test_values_too_long_for_their_columns_are_cell_warnings_never_a_failed_file(engine, seeded, write_csv):
    salespeople.add_salesperson(code="JD", name="Jane", email="jane@example.com", engine=engine)
    tag = "de-" + "-".join(["abcdefgh"] * 4)  # looks like a language tag, 38 characters > VARCHAR(35)
    header = f"{HEADER},Salesperson"
    result = import_file(
        write_csv(
            f"{header}\n"
            f"DE,Anna,Alt,anna@example.com,,E1,{'S' * 201};Newsletter,{tag},{'O' * 301},{'J' * 51}\n"
            f"DE,Emil,Neu,emil@example.com,,E7,VIP,{tag},,JD\n",
            name="long.csv",
        ),
        engine=engine,
    )
    assert (result.status, result.updated, result.created, result.rejected) == ("succeeded", 1, 1, 0)
    assert [
        (line, column, severity) for line, column, severity, _ in issues(engine, result.import_run_id)
    ] == [
        (2, "Organization", "warning"),
        (2, "Language", "warning"),
        (2, "Salesperson", "warning"),
        (2, "Segments", "warning"),  # a name no segment can have: not found, not created
        (3, "Language", "warning"),
    ]
    contacts = stored(engine)
    assert (contacts["E1"]["language"], contacts["E1"]["organization"]) == ("de-AT", "Acme")
    assert (contacts["E7"]["language"], contacts["E7"]["salesperson_code"]) == (None, "JD")
    assert segments_of(engine)["E1"] == ["Newsletter", "VIP"]


def test_an_earlier_row_yields_only_to_a_later_row_that_lands(engine, write_csv):
    result = import_file(
        write_csv(f"{HEADER}\nDE,Neu,Komplett,neu@example.com,,E8,,,\n,,,neu@example.com,,E8,,,\n"),
        engine=engine,
    )
    assert (result.created, result.rejected, result.duplicates) == (1, 1, 0)
    assert [c["last_name"] for c in contact_rows(engine)] == ["Komplett"]
    assert {line for line, *_ in issues(engine, result.import_run_id)} == {3}


def test_a_file_without_a_column_to_find_contacts_by_still_needs_every_new_contact_column(engine, write_csv):
    result = import_file(write_csv("Vorname;Nachname;Handynummer\nA;B;0151 23456789\n"), engine=engine)
    assert result.status == "rejected"
    assert result.error.startswith("missing required column(s): Country Code (header has")
    assert "External ID, Email, Country Code + Mobile Number" in result.error


def test_a_row_that_changes_a_contacts_keys_changes_them_and_later_rows_match_by_the_new_keys(
    engine, seeded, write_csv
):
    """The keys (indexed columns) are written apart from the other fields on SQLite (apply.update_contacts):
    changed where a row changes them, kept where it leaves them empty, and found by the next import."""
    changes = (
        f"{HEADER}\n"
        "DE,Anna,Alt,anna.neu@example.com,0151 99999999,E1,,,\n"  # new e-mail and mobile, same ID
        "DE,Bernd,Neu,,,E2,,,\n"  # keys left empty: kept
    )
    result = import_file(write_csv(changes, name="keys.csv"), engine=engine)
    assert (result.updated, result.rejected) == (2, 0)
    after = stored(engine)
    assert (after["E1"]["email"], after["E1"]["email_key"], after["E1"]["mobile_e164"]) == (
        "anna.neu@example.com",
        "anna.neu@example.com",
        "+4915199999999",
    )
    assert (after["E2"]["email_key"], after["E2"]["last_name"]) == ("bernd@example.com", "Neu")

    by_new_keys = f"{HEADER}\nDE,Anna,Neu,ANNA.NEU@example.com,,,,,\nDE,Anna,Mobil,,0151 99999999,,,,\n"
    again = import_file(write_csv(by_new_keys, name="by-keys.csv"), engine=engine)
    assert (again.created, again.updated, again.rejected) == (0, 1, 0)
    assert stored(engine)["E1"]["last_name"] == "Mobil"  # both rows found Anna; the later one landed
