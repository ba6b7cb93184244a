"""Rendering an SMS variant: plain text (no HTML escaping), sandboxed, strict, stripped; and which
sender a message goes out with."""

from __future__ import annotations

import json

import pytest
from fake_sms_support import sms_mailing
from segmail.errors import SegmailError
from segmail.mailings.render import SAMPLE_CONTACT
from segmail.sms.render import compile_sms, sender_for, sms_context


def render(text: str, **contact) -> str:
    mailing = sms_mailing(variants={"en": {"text": text}})
    context = sms_context(
        contact={**SAMPLE_CONTACT, **contact}, segment="Newsletter", salesperson=None, mailing=mailing
    )
    return compile_sms(mailing, "en").render(context)


def test_plain_text_is_not_html_escaped_and_surrounding_whitespace_goes():
    assert (
        render("  Hi {{ contact.first_name }} & co <3 \n", first_name="Zoë & Ann") == "Hi Zoë & Ann & co <3"
    )


def test_undefined_variables_fail_and_the_sandbox_holds():
    from jinja2.exceptions import SecurityError, UndefinedError

    with pytest.raises(UndefinedError):
        render("Hi {{ contact.nickname }}")
    with pytest.raises(SecurityError):
        render("{{ contact.first_name.__class__.__mro__[1].__subclasses__() }}")


def test_the_variants_sender_wins_then_the_mailings_then_the_connections(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMS_DEFAULT", json.dumps({"conn_type": "http", "extra": {"default_sender": "Garage"}})
    )
    variants = {"en": {"text": "Hi", "sender": "+4366412345"}, "de": {"text": "Hallo"}}
    assert sender_for(sms_mailing(variants=variants), "en") == "+4366412345"
    assert sender_for(sms_mailing(variants=variants), "de") == "Autohaus"
    assert sender_for(sms_mailing(variants=variants, sender=None), "de") == "Garage"


def test_without_any_sender_the_error_says_where_to_set_one(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_SMS_DEFAULT", raising=False)
    monkeypatch.setenv(
        "AIRFLOW_CONN_TEXTS",
        json.dumps({"conn_type": "http", "extra": {"default_sender": "Autohaus Demo GmbH"}}),
    )
    with pytest.raises(SegmailError, match=r'reminder.yaml: no sender for language en: .* "default_sender"'):
        sender_for(sms_mailing(sender=None), "en")
    with pytest.raises(SegmailError, match=r"connection texts: sender 'Autohaus Demo GmbH' must be a number"):
        sender_for(sms_mailing(sender=None, gateway_conn_id="texts"), "en")


def test_an_email_mailing_is_no_sms_mailing():
    from segmail.mailings.definition import get_mailing

    with pytest.raises(SegmailError, match="mailing newsletter is not an SMS mailing"):
        compile_sms(get_mailing("newsletter"), "en")
