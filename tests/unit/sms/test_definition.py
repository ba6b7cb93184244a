"""`channel: sms` in a mailing definition: what an SMS mailing and its variants may say, and the
one-line errors that name the field of the other channel."""

from __future__ import annotations

from pathlib import Path

import pytest
from fake_sms_support import sms_mailing, sms_mailing_data
from segmail.errors import SegmailError
from segmail.mailings.definition import Mailing, Variant, load_mailing
from segmail.sms.definition import SmsVariant
from segmail.store.models import Channel

EMAIL = {
    "name": "News",
    "audience": {"segments": ["Newsletter"]},
    "from": "Shop <news@shop.example>",
    "default_language": "en",
    "variants": {"en": {"subject": "Hi", "body": "news/en.html"}},
}


def load(tmp_path: Path, yaml_text: str, name: str = "reminder.yaml") -> Mailing:
    path = tmp_path / name
    path.write_text(yaml_text, encoding="utf-8")
    return load_mailing(path)


def test_channel_defaults_to_email_and_email_variants_stay_what_they_were():
    mailing = Mailing.model_validate({**EMAIL, "slug": "news"})
    assert mailing.channel == Channel.EMAIL
    assert isinstance(mailing.variants["en"], Variant)


def test_an_sms_mailing_has_sms_variants_its_defaults_and_the_language_choice():
    mailing = sms_mailing(
        variants={"de": {"text": "Hallo", "sender": "+4366412345"}, "en": {"body": "sms/en.txt"}}
    )
    assert mailing.channel == Channel.SMS
    assert all(isinstance(v, SmsVariant) for v in mailing.variants.values())
    assert (mailing.gateway_conn_id, mailing.max_parts, mailing.sender) == ("sms_default", 3, "Autohaus")
    assert mailing.variants["de"].sender == "+4366412345"
    assert mailing.variant_for("de-AT") == "de" and mailing.variant_for("fr") == "en"


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        pytest.param(
            "channel: sms\nname: R\naudience: {segments: [S]}\ndefault_language: en\n"
            "variants: {en: {text: Hi, subject: Hello}}\n",
            "variants: Value error, en.subject is a field of an e-mail variant, not of an SMS variant",
            id="subject-in-sms-variant",
        ),
        pytest.param(
            "channel: sms\nname: R\naudience: {segments: [S]}\ndefault_language: en\n"
            "variants: {en: {text: Hi, attachments: [a.pdf]}}\n",
            "en.attachments is a field of an e-mail variant",
            id="attachments-in-sms-variant",
        ),
        pytest.param(
            "channel: sms\nname: R\naudience: {segments: [S]}\ndefault_language: en\n"
            "variants: {en: {text: Hi, html: false}}\n",
            "en.html is a field of an e-mail variant",
            id="html-in-sms-variant",
        ),
        pytest.param(
            "channel: sms\nname: R\naudience: {segments: [S]}\ndefault_language: en\n"
            'from: "Shop <a@shop.example>"\nvariants: {en: {text: Hi}}\n',
            "reminder.yaml: (file): Value error, from is a field of an e-mail mailing; this mailing has channel: sms",
            id="from-on-sms-mailing",
        ),
        pytest.param(
            "channel: sms\nname: R\naudience: {segments: [S]}\ndefault_language: en\n"
            "smtp_conn_id: smtp_default\nvariants: {en: {text: Hi}}\n",
            "smtp_conn_id is a field of an e-mail mailing",
            id="smtp-conn-on-sms-mailing",
        ),
        pytest.param(
            "channel: sms\nname: R\naudience: {segments: [S]}\ndefault_language: en\n"
            "dkim: {domain: a.example, selector: s, key_conn_id: k}\nvariants: {en: {text: Hi}}\n",
            "dkim is a field of an e-mail mailing",
            id="dkim-on-sms-mailing",
        ),
        pytest.param(
            "name: R\naudience: {segments: [S]}\ndefault_language: en\nfrom: a@shop.example\n"
            "variants: {en: {subject: Hi, body: x.html, text: Hi}}\n",
            "en.text is a field of an SMS variant (channel: sms), not of an e-mail variant",
            id="text-in-email-variant",
        ),
        pytest.param(
            "name: R\naudience: {segments: [S]}\ndefault_language: en\nfrom: a@shop.example\n"
            "sender: Shop\nvariants: {en: {subject: Hi, body: x.html}}\n",
            "sender is a field of an SMS (channel: sms) mailing; this mailing has channel: email",
            id="sender-on-email-mailing",
        ),
        pytest.param(
            "name: R\naudience: {segments: [S]}\ndefault_language: en\nfrom: a@shop.example\n"
            "max_parts: 2\nvariants: {en: {subject: Hi, body: x.html}}\n",
            "max_parts is a field of an SMS (channel: sms) mailing",
            id="max-parts-on-email-mailing",
        ),
        pytest.param(
            "name: R\naudience: {segments: [S]}\ndefault_language: en\n"
            "variants: {en: {subject: Hi, body: x.html}}\n",
            "from: required for an e-mail mailing",
            id="email-without-from",
        ),
        pytest.param(
            "channel: sms\nname: R\naudience: {segments: [S]}\ndefault_language: en\n"
            "variants: {en: {text: Hi, body: sms/en.txt}}\n",
            "en: give the message as either text (inline) or body (a template file), not both",
            id="text-and-body",
        ),
        pytest.param(
            "channel: sms\nname: R\naudience: {segments: [S]}\ndefault_language: en\nvariants: {en: {}}\n",
            "en: give the message as either text (inline) or body (a template file), not both",
            id="neither-text-nor-body",
        ),
        pytest.param(
            "channel: sms\nname: R\naudience: {segments: [S]}\ndefault_language: en\n"
            "variants: {en: {text: Hi, sendr: X}}\n",
            "en.sendr: Extra inputs are not permitted",
            id="typo-in-sms-variant",
        ),
        pytest.param(
            "channel: sms\nname: R\naudience: {segments: [S]}\ndefault_language: en\n"
            "sender: Autohaus Demo GmbH\nvariants: {en: {text: Hi}}\n",
            "sender: Value error, sender 'Autohaus Demo GmbH' must be a number (up to 15 digits",
            id="sender-id-too-long",
        ),
        pytest.param(
            "channel: sms\nname: R\naudience: {segments: [S]}\ndefault_language: en\n"
            "variants: {en: {text: Hi, sender: '12'}}\n",
            "en.sender: sender '12' must be a number",
            id="numeric-sender-too-short",
        ),
        pytest.param(
            "channel: sms\nname: R\naudience: {segments: [S]}\ndefault_language: en\n"
            "max_parts: 0\nvariants: {en: {text: Hi}}\n",
            "max_parts: Input should be greater than or equal to 1",
            id="max-parts-zero",
        ),
        pytest.param(
            "channel: fax\nname: R\naudience: {segments: [S]}\ndefault_language: en\nvariants: {en: {text: Hi}}\n",
            "channel: Input should be 'email' or 'sms'",
            id="unknown-channel",
        ),
    ],
)
def test_definition_errors_name_the_file_and_the_field(tmp_path, yaml_text, message):
    with pytest.raises(SegmailError) as caught:
        load(tmp_path, yaml_text)
    assert message in str(caught.value)
    assert str(caught.value).startswith("reminder.yaml: ")
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "sender",
    [
        pytest.param("Autohaus", id="alphanumeric"),
        pytest.param("AH Demo 1", id="with-space-and-digit"),
        pytest.param("+436641234567", id="international-number"),
        pytest.param("4711", id="short-code"),
    ],
)
def test_valid_senders(sender):
    assert sms_mailing(sender=sender).sender == sender


def test_the_shipped_sample_sms_mailing_loads():
    from segmail.mailings.definition import get_mailing

    mailing = get_mailing("sms_service_reminder")
    assert mailing.channel == Channel.SMS and sorted(mailing.variants) == ["de", "en", "fr"]
    assert mailing.variants["fr"].body == "sms_service_reminder/fr.txt"


def test_sms_mailing_data_is_valid_without_email_fields():
    data = sms_mailing_data()
    assert "from" not in data and Mailing.model_validate(data).from_ is None
