"""GUIDE.md section 2 "Contacts and import", on real files, against SQLite and PostgreSQL."""

from __future__ import annotations

import csv

import pytest
from contacts_support import contact_rows, create_segments, issues, segments_of
from segmail.contacts import optouts, salespeople
from segmail.contacts.segments import list_segments
from segmail.imports import apply
from segmail.imports.pipeline import import_file
from sqlalchemy import text

HEADER = "Country Code,First Name,Last Name,Email,Mobile Number,External ID,Segments,Language"


@pytest.fixture
def segments(engine):
    create_segments(engine)


def test_create_then_reimport_changes_nothing(engine, segments, write_csv):
    path = write_csv(
        f"{HEADER}\n"
        "DE,Anna,Müller,anna@example.com,0151 23456789,E1,VIP; Newsletter,de-AT\n"
        "US,Bob,Smith,bob@example.com,,E2,Newsletter,en\n"
        "FR,Chloé,Martin,,06 12 34 56 78,,,fr\n"
    )
    first = import_file(path, engine=engine)
    assert (first.status, first.rows, first.created, first.updated, first.unchanged) == (
        "succeeded",
        3,
        3,
        0,
        0,
    )
    before = contact_rows(engine)
    assert [c["mobile_e164"] for c in before] == ["+4915123456789", None, "+33612345678"]
    assert segments_of(engine)["E1"] == ["Newsletter", "VIP"]

    second = import_file(path, engine=engine)
    assert (second.created, second.updated, second.unchanged, second.rejected) == (0, 0, 3, 0)
    assert contact_rows(engine) == before


def test_matching_by_external_id_then_email_then_phone(engine, write_csv):
    import_file(
        write_csv(
            f"{HEADER}\n"
            "DE,Anna,Alt,anna@example.com,,E1,,\n"
            "DE,Berta,Alt,Berta@Example.com,,,,\n"
            "DE,Carla,Alt,,0151 11111111,,,\n"
        ),
        engine=engine,
    )
    result = import_file(
        write_csv(
            f"{HEADER}\n"
            "DE,Anna,Neu,,0151 22222222,E1,,\n"  # by external ID
            "DE,Berta,Neu,berta@EXAMPLE.com,,,,\n"  # by e-mail, case-insensitive
            "DE,Carla,Neu,,+49 151 11111111,,,\n",  # by country + mobile in E.164
            name="second.csv",
        ),
        engine=engine,
    )
    assert (result.created, result.updated) == (0, 3)
    assert [c["last_name"] for c in contact_rows(engine)] == ["Neu", "Neu", "Neu"]


def test_a_row_matching_two_contacts_is_a_conflict_and_never_merged(engine, write_csv):
    import_file(
        write_csv(f"{HEADER}\nDE,Anna,A,anna@example.com,,E1,,\nDE,Otto,O,otto@example.com,,,,\n"),
        engine=engine,
    )
    result = import_file(
        write_csv(f"{HEADER}\nDE,Anna,X,otto@example.com,,E1,,\n", name="b.csv"), engine=engine
    )
    assert (result.rejected, result.updated) == (1, 0)
    ((line, _, severity, reason),) = issues(engine, result.import_run_id)
    assert (line, severity) == (2, "error")
    assert "match 2 different contacts" in reason
    assert [c["last_name"] for c in contact_rows(engine)] == ["A", "O"]


def test_contacts_with_different_external_ids_may_share_an_address(engine, write_csv):
    result = import_file(
        write_csv(f"{HEADER}\nDE,Anna,A,office@example.com,,E1,,\nDE,Bernd,B,office@example.com,,E2,,\n"),
        engine=engine,
    )
    assert (result.created, result.duplicates) == (2, 0)
    ambiguous = import_file(
        write_csv(f"{HEADER}\nDE,Who,Z,office@example.com,,,,\n", name="z.csv"), engine=engine
    )
    assert ambiguous.rejected == 1  # no external ID: which of the two? never guessed


def test_non_empty_cells_overwrite_and_empty_cells_keep(engine, write_csv):
    import_file(write_csv(f"{HEADER}\nDE,Anna,Alt,anna@example.com,0151 23456789,E1,,de\n"), engine=engine)
    result = import_file(
        write_csv(f"{HEADER}\nAT,Anna,Neu,anna@example.com,,E1,,\n", name="u.csv"), engine=engine
    )
    assert result.updated == 1
    (c,) = contact_rows(engine)
    assert (c["country_code"], c["last_name"], c["email"], c["mobile_e164"], c["language"]) == (
        "AT",
        "Neu",
        "anna@example.com",
        "+4915123456789",
        "de",
    )


def test_an_import_sets_but_never_clears_an_opt_out(engine, write_csv):
    header = "Country Code,First Name,Last Name,Email,Email Opt Out"
    import_file(write_csv(f"{header}\nDE,A,B,a@example.com,yes\nDE,C,D,c@example.com,\n"), engine=engine)
    assert [c["email_opt_out"] for c in contact_rows(engine)] == [True, False]
    assert contact_rows(engine)[0]["email_opt_out_source"] == "import:contacts.csv"
    optouts.set_opt_out(key="c@example.com", opted_out=True, engine=engine)
    result = import_file(
        write_csv(f"{header}\nDE,A,B,a@example.com,no\nDE,C,D,c@example.com,\n", name="x.csv"), engine=engine
    )
    assert [c["email_opt_out"] for c in contact_rows(engine)] == [True, True]
    assert result.unchanged == 2


def test_merge_adds_and_replace_makes_memberships_exactly_the_file(engine, segments, write_csv):
    import_file(
        write_csv(f"{HEADER}\nDE,A,A,a@example.com,,E1,VIP;Newsletter,\nDE,B,B,b@example.com,,E2,VIP,\n"),
        engine=engine,
    )
    merged = import_file(
        write_csv(
            f"{HEADER}\nDE,A,A,a@example.com,,E1,service plan,\nDE,B,B,b@example.com,,E2,VIP,\n", name="m.csv"
        ),
        engine=engine,
    )
    assert segments_of(engine) == {"E1": ["Newsletter", "Service Plan", "VIP"], "E2": ["VIP"]}
    assert (merged.updated, merged.unchanged) == (1, 1)

    replaced = import_file(
        write_csv(
            f"{HEADER}\nDE,A,A,a@example.com,,E1,Newsletter,\nDE,B,B,b@example.com,,E2,,\n", name="r.csv"
        ),
        mode="replace",
        engine=engine,
    )
    assert segments_of(engine) == {"E1": ["Newsletter"], "E2": []}  # an empty cell removes all
    assert replaced.updated == 2


def test_a_file_without_segments_column_leaves_memberships_alone(engine, segments, write_csv):
    import_file(write_csv(f"{HEADER}\nDE,A,A,a@example.com,,E1,VIP,\n"), engine=engine)
    import_file(
        write_csv(
            "External ID,Country Code,First Name,Last Name,Email\nE1,DE,A,Neu,a@example.com\n", name="n.csv"
        ),
        mode="replace",
        engine=engine,
    )
    assert segments_of(engine) == {"E1": ["VIP"]}


def test_unknown_segment_warns_is_not_created_and_the_row_still_lands(engine, segments, write_csv):
    result = import_file(write_csv(f"{HEADER}\nDE,A,A,a@example.com,,E1,VIP; Nope,\n"), engine=engine)
    assert (result.created, result.warnings) == (1, 1)
    assert segments_of(engine) == {"E1": ["VIP"]}
    assert [s["name"] for s in list_segments(engine=engine)] == ["Newsletter", "Service Plan", "VIP"]
    ((line, column, severity, reason),) = issues(engine, result.import_run_id)
    assert (line, column, severity) == (2, "Segments", "warning")
    assert "'Nope' does not exist and was not created" in reason


def test_duplicates_in_one_file_take_the_last_row_and_report_the_earlier(engine, write_csv):
    result = import_file(
        write_csv(
            f"{HEADER}\n"
            "DE,A,First,a@example.com,,,,\n"
            "DE,B,Other,b@example.com,,,,\n"
            "DE,A,Last,A@EXAMPLE.COM,,,,\n"
        ),
        engine=engine,
    )
    assert (result.created, result.duplicates) == (2, 1)
    assert sorted(c["last_name"] for c in contact_rows(engine)) == ["Last", "Other"]
    ((line, _, severity, reason),) = issues(engine, result.import_run_id)
    assert (line, severity) == (2, "duplicate")
    assert "row 4" in reason


def test_bad_rows_are_rejected_one_by_one_and_good_rows_land(engine, write_csv, tmp_path):
    path = write_csv(
        f"{HEADER}\n"
        "DE,Good,One,good@example.com,,,,\n"
        "+1,Bad,Country,x@example.com,,,,\n"
        'DE,Multi,"Line\nName",,,,,\n'
        "DE,,NoFirst,nf@example.com,,,,\n"
        "DE,Good,Two,=cmd|' /C calc'!A0,,,,\n"
    )
    report = tmp_path / "report.csv"
    result = import_file(path, engine=engine, report_path=report)
    assert (result.rows, result.created, result.rejected) == (5, 1, 4)
    found = [(line, column) for line, column, _, _ in issues(engine, result.import_run_id)]
    assert found == [(3, "Country Code"), (4, "Email"), (5, "First Name"), (6, "Email")]
    with report.open(encoding="utf-8-sig") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["Row", "Column", "Value", "Severity", "Reason"]
    assert rows[-1][2].startswith("'=")  # formula neutralised for spreadsheets


def test_an_unreadable_file_is_rejected_whole_and_the_database_stays(engine, write_csv):
    import_file(write_csv(f"{HEADER}\nDE,A,A,a@example.com,,E1,,\n"), engine=engine)
    before = contact_rows(engine)
    result = import_file(write_csv("Vorname;Nachname\nA;B\n", name="bad.csv"), engine=engine)
    assert result.status == "rejected"
    assert "missing required column(s): Country Code" in result.error
    assert contact_rows(engine) == before


def test_a_failure_while_applying_rolls_back_everything(engine, segments, write_csv, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(apply, "apply_memberships", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        import_file(write_csv(f"{HEADER}\nDE,A,A,a@example.com,,E1,VIP,\n"), engine=engine)
    assert contact_rows(engine) == []
    with engine.connect() as conn:
        status, error = conn.execute(text("SELECT status, error FROM segmail_import_runs")).one()
        assert conn.execute(text("SELECT COUNT(*) FROM segmail_import_issues")).scalar_one() == 0
    assert (status, error) == ("failed", "RuntimeError: disk full")


def test_unknown_salesperson_warns(engine, write_csv):
    salespeople.add_salesperson(code="jd", name="Jane", email="jane@example.com", engine=engine)
    result = import_file(
        write_csv(
            "Country Code,First Name,Last Name,Email,Salesperson\nDE,A,A,a@example.com,JD\nDE,B,B,b@example.com,ZZ\n"
        ),
        engine=engine,
    )
    assert result.warnings == 1
    assert [c["salesperson_code"] for c in contact_rows(engine)] == ["JD", None]


def test_rows_sharing_several_keys_name_the_external_id(engine, write_csv):
    result = import_file(
        write_csv(f"{HEADER}\nDE,A,Old,a@example.com,,E1,,\nDE,A,New,a@example.com,,E1,,\n"), engine=engine
    )
    assert (result.created, result.duplicates) == (1, 1)
    assert issues(engine, result.import_run_id) == [
        (2, "External ID", "duplicate", "duplicate: row 3 has the same External ID and was imported instead")
    ]


def test_rows_with_different_keys_for_one_stored_contact_take_the_last(engine, write_csv):
    import_file(write_csv(f"{HEADER}\nDE,A,Stored,a@example.com,,E1,,\n"), engine=engine)
    result = import_file(
        write_csv(f"{HEADER}\nDE,A,ById,,0151 23456789,E1,,\nDE,A,ByEmail,a@example.com,,,,\n", name="2.csv"),
        engine=engine,
    )
    assert (result.updated, result.duplicates, result.rejected) == (1, 1, 0)
    assert [c["last_name"] for c in contact_rows(engine)] == ["ByEmail"]
    assert issues(engine, result.import_run_id) == [
        (2, None, "duplicate", "duplicate: row 3 has the same existing contact and was imported instead")
    ]


def test_staging_tables_are_gone_after_an_import(engine, write_csv):
    from sqlalchemy import inspect

    import_file(write_csv(f"{HEADER}\nDE,A,A,a@example.com,,E1,,\n"), engine=engine)
    import_file(write_csv("Vorname\nA\n", name="bad.csv"), engine=engine)
    with engine.connect() as conn:
        temporary = inspect(conn).get_temp_table_names() if engine.dialect.name == "sqlite" else []
        tables = inspect(conn).get_table_names()
    assert not [t for t in [*temporary, *tables] if t.startswith("segmail_stage")]


@pytest.mark.parametrize(
    ("stored", "added"),
    [(1, 3), (3, 1)],
    ids=["fewer-matched-than-new", "more-matched-than-new"],
)
def test_new_contacts_beside_matched_rows_get_their_own_values_and_segments(
    engine, segments, write_csv, stored, added
):
    """insert_contacts reads new rows by the shorter list (rows that match nothing, or new rows):
    either way each new contact gets its own row's values, a fresh id and its own segments."""
    stored_rows = [f"DE,Stored{i},Alt,s{i}@example.com,,S{i},VIP,de\n" for i in range(stored)]
    import_file(write_csv(HEADER + "\n" + "".join(stored_rows)), engine=engine)
    before = {c["external_id"]: c for c in contact_rows(engine)}

    new_rows = [f"FR,New{i},Neu,n{i}@example.com,,N{i},Newsletter,fr\n" for i in range(added)]
    result = import_file(write_csv(HEADER + "\n" + "".join(stored_rows + new_rows)), engine=engine)

    assert (result.created, result.unchanged) == (added, stored)
    after = {c["external_id"]: c for c in contact_rows(engine)}
    assert {k: after[k] for k in before} == before
    new = [after[f"N{i}"] for i in range(added)]
    assert [(c["first_name"], c["email"], c["country_code"]) for c in new] == [
        (f"New{i}", f"n{i}@example.com", "FR") for i in range(added)
    ]
    assert min(c["id"] for c in new) > max(c["id"] for c in before.values())
    assert len({c["id"] for c in after.values()}) == stored + added
    memberships = segments_of(engine)
    assert all(memberships[f"N{i}"] == ["Newsletter"] for i in range(added))
    assert all(memberships[f"S{i}"] == ["VIP"] for i in range(stored))
