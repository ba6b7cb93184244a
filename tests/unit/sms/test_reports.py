"""Delivery-report types, stop words, sender numbers, report and inbound URLs, without a database."""

from __future__ import annotations

import pytest
from segmail.feedback.tokens import TokenPurpose, TokenSigner
from segmail.sms.reports import (
    ReportUrls,
    classify,
    inbound_secret,
    inbound_secret_ok,
    inbound_url,
    sender_number,
    stop_word,
)
from segmail.store.models import DeliveryStatus

KEY = b"unit-test-signing-key-0123456789"


@pytest.mark.parametrize(
    ("report", "answer", "status"),
    [
        pytest.param(1, "", DeliveryStatus.DELIVERED, id="delivered"),
        pytest.param(2, "id:1 stat:UNDELIV err:001", DeliveryStatus.FAILED, id="failed"),
        pytest.param(2, "id:1 stat:EXPIRED err:000", DeliveryStatus.EXPIRED, id="expired"),
        pytest.param(2, "id:1 stat:EXPIRD", DeliveryStatus.EXPIRED, id="expired-smpp-spelling"),
        pytest.param(16, "", DeliveryStatus.FAILED, id="smsc-rejected"),
        pytest.param(4, "", None, id="buffered"),
        pytest.param(8, "ACK/", None, id="smsc-accepted"),
    ],
)
def test_kannel_report_types(report, answer, status):
    assert classify(report, answer) == status


@pytest.mark.parametrize(
    ("message", "word"),
    [
        pytest.param("STOP", "STOP", id="stop"),
        pytest.param("stop", "STOP", id="lower"),
        pytest.param("  Stop!", "STOP", id="punctuation"),
        pytest.param("Stopp bitte", "STOPP", id="german"),
        pytest.param("ABMELDEN", "ABMELDEN", id="abmelden"),
        pytest.param("arrêt", "ARRÊT", id="arret-accent"),
        pytest.param("Arret svp", "ARRET", id="arret-plain"),
        pytest.param("baja", "BAJA", id="spanish"),
        pytest.param("ALTO.", "ALTO", id="alto"),
        pytest.param("unsubscribe me", "UNSUBSCRIBE", id="unsubscribe"),
        pytest.param("Stoppen", "STOPPEN", id="stoppen"),
        pytest.param("Please stop", None, id="not-first"),
        pytest.param("Stopover in Vienna?", None, id="prefix-only"),
        pytest.param("", None, id="empty"),
        pytest.param("🙂", None, id="emoji"),
    ],
)
def test_stop_words_are_the_first_word_in_any_case(message, word):
    assert stop_word(message) == word


@pytest.mark.parametrize(
    ("sender", "number"),
    [
        pytest.param("+436641234567", "+436641234567", id="e164"),
        pytest.param("436641234567", "+436641234567", id="no-plus"),
        pytest.param("00436641234567", "+436641234567", id="idd"),
        pytest.param("+43 664 123-4567", "+436641234567", id="spaces"),
        pytest.param("12345", None, id="short-code"),
        pytest.param("Autohaus", None, id="name"),
        pytest.param("+0123456789", None, id="leading-zero"),
    ],
)
def test_sender_numbers(sender, number):
    assert sender_number(sender) == number


def test_report_urls_are_signed_per_delivery_and_absent_without_a_public_url():
    signer = TokenSigner((KEY,))
    urls = ReportUrls(signer=signer, public_url="https://mail.example")
    url = urls(42)
    assert url.startswith("https://mail.example/sms/dlr/r.")
    verified = signer.verify(url.rsplit("/", 1)[1])
    assert (verified.purpose, verified.delivery_id) == (TokenPurpose.SMS_REPORT, 42)
    assert ReportUrls(signer=signer, public_url="")(42) is None


def test_the_inbound_secret_is_derived_from_the_signing_key_and_survives_rotation():
    secret = inbound_secret((KEY,))
    assert len(secret) == 32 and KEY.hex() not in secret
    assert inbound_secret_ok(secret, (b"new-key-0123456789abcdef", KEY))
    assert not inbound_secret_ok(secret, (b"other-key-0123456789abcdef",))
    assert not inbound_secret_ok(secret[:-1], (KEY,))
    assert (
        inbound_url(public_url="https://mail.example", keys=(KEY,)) == f"https://mail.example/sms/in/{secret}"
    )


def test_report_url_follows_the_settings(monkeypatch):
    from segmail.sms.reports import report_url

    monkeypatch.setenv("SEGMAIL_PUBLIC_URL", "https://one.example")
    assert report_url(7).startswith("https://one.example/sms/dlr/r.7.")
    monkeypatch.setenv("SEGMAIL_PUBLIC_URL", "https://two.example/")
    assert report_url(7).startswith("https://two.example/sms/dlr/r.7.")
    monkeypatch.setenv("SEGMAIL_SMS_CALLBACK_URL", "http://segmail-public:8090")
    assert report_url(7).startswith("http://segmail-public:8090/sms/dlr/r.7.")
    monkeypatch.delenv("SEGMAIL_SMS_CALLBACK_URL")
    monkeypatch.delenv("SEGMAIL_PUBLIC_URL")
    assert report_url(7) is None
