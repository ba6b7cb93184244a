"""`segmail mailings validate` on SMS mailings: each variant's encoding, characters and parts for the
sample contact, and one-line errors above max_parts, without a sender or with a template error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests_support import copy_include

REMINDER = "include/mailings/sms_service_reminder.yaml"


@pytest.fixture
def include(tmp_path, monkeypatch):
    return copy_include(tmp_path, monkeypatch)


def edit(include: Path, old: str, new: str) -> None:
    path = include / "mailings" / "sms_service_reminder.yaml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


def test_the_shipped_sms_mailing_validates_and_reports_each_variant(capsys):
    from segmail.cli.main import main

    assert main(["mailings", "validate"]) == 0
    out = capsys.readouterr().out
    assert "sms_service_reminder de: GSM-7, 129 characters, 1 part (sender Autohaus)" in out
    assert "sms_service_reminder fr: GSM-7, 128 characters, 1 part (sender Autohaus)" in out
    assert "ok: sms_service_reminder (de, en, fr)" in out


def test_a_variant_above_max_parts_fails_naming_it_and_why(include, capsys):
    from segmail.cli.main import main

    (include / "templates" / "sms_service_reminder" / "fr.txt").write_text(
        "Bonjour {{ contact.first_name }}, votre contrôle est dû. " * 2, encoding="utf-8"
    )
    assert main(["mailings", "validate"]) == 0  # two parts: within the sample's max_parts: 2
    assert (
        "sms_service_reminder fr: UCS-2 (because of 'ô'), 73 characters, 2 parts" in capsys.readouterr().out
    )
    edit(include, "max_parts: 2", "max_parts: 1")
    assert main(["mailings", "validate"]) == 1
    assert (
        "error: sms_service_reminder.yaml variant fr: too long: UCS-2 (because of 'ô'), 73 characters,"
        " 2 parts, more than max_parts=1\n" in capsys.readouterr().err
    )


def test_no_sender_in_the_file_or_the_connection_is_an_error(include, monkeypatch, capsys):
    from segmail.cli.main import main

    edit(include, "sender: Autohaus ", "# sender: Autohaus ")
    monkeypatch.delenv("AIRFLOW_CONN_SMS_DEFAULT", raising=False)
    assert main(["mailings", "validate"]) == 1
    assert (
        "sms_service_reminder.yaml variant de: sms_service_reminder.yaml: no sender for language de: set sender:"
        ' in the file or "default_sender" in the extra of the connection sms_default'
        in capsys.readouterr().err
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMS_DEFAULT",
        json.dumps({"conn_type": "http", "host": "127.0.0.1", "extra": {"default_sender": "Garage"}}),
    )
    assert main(["mailings", "validate"]) == 0
    assert "sms_service_reminder en: GSM-7, 107 characters, 1 part (sender Garage)" in capsys.readouterr().out


def test_an_undefined_variable_names_the_variant(include, capsys):
    from segmail.cli.main import main

    edit(include, "Hi {{ contact.first_name }}", "Hi {{ contact.firstname }}")
    assert main(["mailings", "validate"]) == 1
    err = capsys.readouterr().err
    assert "sms_service_reminder.yaml variant en: UndefinedError" in err and "firstname" in err


def test_an_sms_has_no_unsubscribe_link(include, capsys):
    from segmail.cli.main import main

    edit(include, "Reply STOP to opt out", "Opt out: {{ unsubscribe_url }}")
    assert main(["mailings", "validate"]) == 1
    assert "variant en: UndefinedError: 'unsubscribe_url' is undefined" in capsys.readouterr().err


def test_without_a_public_url_it_says_reports_will_not_come(include, monkeypatch, capsys):
    from segmail.cli.main import main

    monkeypatch.delenv("SEGMAIL_PUBLIC_URL")
    main(["mailings", "validate"])  # the newsletter fails without an unsubscribe link; the SMS mailing not
    captured = capsys.readouterr()
    assert (
        "sms_service_reminder: no SEGMAIL_PUBLIC_URL: no delivery reports, messages stay `sent`"
        in captured.out
    )
    assert "ok: sms_service_reminder (de, en, fr)" in captured.out


def test_a_public_url_without_a_signing_key_is_an_error(include, monkeypatch, capsys):
    from segmail.cli.main import main

    monkeypatch.delenv("AIRFLOW_CONN_SEGMAIL_SIGNING")
    assert main(["mailings", "validate"]) == 1
    assert "error: sms_service_reminder.yaml: delivery report URLs: " in capsys.readouterr().err
