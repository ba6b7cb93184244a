"""SMS sending has its own pool setting, and an SMS mailing has no From domain for the DNS check."""

from __future__ import annotations

from fake_sms_support import sms_mailing


def test_the_sms_pool_is_its_own_setting(monkeypatch):
    from segmail import settings

    monkeypatch.delenv("SEGMAIL_SMS_POOL", raising=False)
    assert (settings.current().sms_pool, settings.current().smtp_pool) == ("sms", "smtp")
    monkeypatch.setenv("SEGMAIL_SMS_POOL", "gateway")
    assert settings.current().sms_pool == "gateway"


def test_an_sms_mailing_has_no_from_domain_to_check():
    from segmail.mailings.dns_check import from_domains

    assert from_domains(sms_mailing()) == {}
