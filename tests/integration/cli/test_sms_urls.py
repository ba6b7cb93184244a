"""`segmail sms-urls`: the gateway's settings for reports and STOP replies, with the inbound secret."""

from __future__ import annotations

from segmail.cli.main import main
from segmail.sms.reports import inbound_secret
from tests_support import TEST_SIGNING_KEY


def test_prints_the_report_url_and_the_kannel_sms_service(capsys):
    assert main(["sms-urls"]) == 0
    out = capsys.readouterr().out
    public = "https://unsubscribe.autohaus-demo.example"  # SEGMAIL_PUBLIC_URL in tests/conftest.py
    assert f"{public}/sms/dlr/<token>?status=%d&answer=%A" in out
    assert f'get-url = "{public}/sms/in/{inbound_secret((TEST_SIGNING_KEY,))}?from=%p&to=%P&text=%a"' in out
    assert TEST_SIGNING_KEY.decode() not in out


def test_without_a_public_url_it_says_what_is_missing(capsys, monkeypatch):
    monkeypatch.delenv("SEGMAIL_PUBLIC_URL")
    assert main(["sms-urls"]) == 2
    assert "neither SEGMAIL_SMS_CALLBACK_URL nor SEGMAIL_PUBLIC_URL is set" in capsys.readouterr().err


def test_a_gateway_on_an_inner_network_gets_the_callback_url(capsys, monkeypatch):
    """docker compose: Kannel reaches the public app as segmail-public, recipients as localhost."""
    monkeypatch.setenv("SEGMAIL_SMS_CALLBACK_URL", "http://segmail-public:8090/")
    assert main(["sms-urls"]) == 0
    out = capsys.readouterr().out
    assert "http://segmail-public:8090/sms/dlr/<token>?" in out
    assert 'get-url = "http://segmail-public:8090/sms/in/' in out
    assert "unsubscribe.autohaus-demo.example" not in out
