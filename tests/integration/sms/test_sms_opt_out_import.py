"""The import's `SMS Opt Out` column, on SQLite and PostgreSQL: it sets an SMS opt-out and never
clears one, and it is apart from the e-mail opt-out."""

from __future__ import annotations

from contacts_support import contact_rows
from segmail.imports.pipeline import import_file


def test_sms_opt_out_sets_but_never_clears_and_leaves_email_alone(engine, write_csv):
    header = "Country Code,First Name,Last Name,Email,Mobile Number,SMS Opt Out"
    first = import_file(
        write_csv(f"{header}\nDE,A,B,a@example.com,0151 23456789,yes\nDE,C,D,c@example.com,0151 23456780,\n"),
        engine=engine,
    )
    assert (first.created, first.warnings) == (2, 0)
    rows = contact_rows(engine)
    assert [(c["sms_opt_out"], c["email_opt_out"]) for c in rows] == [(True, False), (False, False)]
    assert rows[0]["sms_opt_out_source"] == "import:contacts.csv" and rows[0]["sms_opt_out_at"] is not None
    assert rows[1]["sms_opt_out_at"] is None

    again = import_file(
        write_csv(f"{header}\nDE,A,B,a@example.com,,nein\nDE,C,D,c@example.com,,\n", name="again.csv"),
        engine=engine,
    )
    assert [c["sms_opt_out"] for c in contact_rows(engine)] == [True, False]  # "nein" does not clear
    assert (again.updated, again.unchanged) == (0, 2)


def test_german_header_opts_out_a_stored_contact_and_counts_it_as_updated(engine, write_csv):
    import_file(write_csv("Ländervorwahl,Vorname,Nachname,E-Mail\nAT,A,B,a@example.at\n"), engine=engine)
    result = import_file(
        write_csv("E-Mail;SMS-Abmeldung;E-Mail-Abmeldung\na@example.at;ja;\n", name="abmeldung.csv"),
        engine=engine,
    )
    assert (result.updated, result.unchanged) == (1, 0)
    (contact,) = contact_rows(engine)
    assert (contact["sms_opt_out"], contact["email_opt_out"]) == (True, False)
    assert contact["sms_opt_out_source"] == "import:abmeldung.csv"


def test_export_writes_the_sms_opt_out_column(engine, write_csv):
    import io

    from segmail.contacts.export import export_contacts

    import_file(
        write_csv("Country Code,First Name,Last Name,Email,SMS Opt Out\nDE,A,B,a@example.com,x\n"),
        engine=engine,
    )
    out = io.StringIO()
    export_contacts(out, engine=engine)
    header, row = out.getvalue().splitlines()
    assert header.endswith("Email Opt Out,SMS Opt Out") and row.endswith(",,yes")


def test_cli_sms_opt_out_by_number_reaches_every_contact_sharing_it(engine, write_csv, capsys):
    from segmail.cli.main import main

    header = "External ID,Country Code,First Name,Last Name,Email,Mobile Number,Email Opt Out"
    import_file(
        write_csv(
            f"{header}\nE1,DE,A,B,a@example.com,0151 23456789,yes\nE2,DE,C,D,c@example.com,0151 23456789,\n"
            "E3,DE,E,F,e@example.com,0160 3456789,\n"
        ),
        engine=engine,
    )
    assert main(["contacts", "opt-out", "+49 151 23456789", "--sms", "--source", "phone call"]) == 0
    assert "2 contact(s) opted out of SMS" in capsys.readouterr().out
    rows = contact_rows(engine)
    assert [(c["sms_opt_out"], c["email_opt_out"]) for c in rows] == [
        (True, True),
        (True, False),
        (False, False),
    ]
    assert rows[1]["sms_opt_out_source"] == "phone call"
    assert main(["contacts", "opt-in", "c@example.com", "--sms"]) == 0
    assert [c["sms_opt_out"] for c in contact_rows(engine)] == [True, False, False]
    assert [c["email_opt_out"] for c in contact_rows(engine)] == [True, False, False]  # untouched
    assert main(["contacts", "opt-out", "+49 151", "--sms"]) == 2
    assert "invalid mobile number for the contact" in capsys.readouterr().err
