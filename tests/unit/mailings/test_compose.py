"""The composer: one recipient becomes a Message-ID and the bytes of a mail, or a render failure."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy

import pytest
from segmail.mailings.compose import Composed, Composer, RenderFailed, delivery_recipient, sender_domain
from unit.mailings.fakes import mailing, pending_mail, variant

DATE = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def test_a_delivery_is_composed_with_its_contacts_fields_and_a_message_id_per_run_and_contact():
    composer = Composer(
        mailing(), variant(text="{{ contact.organization }}|{{ salesperson.name }}|{{ segment.name }}")
    )
    mail = pending_mail(1, organization=None, sp_name="Maria Berger", segment="Newsletter")
    composed = composer.compose_delivery(7, mail, date=DATE)
    assert isinstance(composed, Composed)
    assert composed.message_id == "<segmail.7.101@shop.example>"
    message = message_from_bytes(composed.data, policy=policy.default)
    assert message["To"] == "First1 Last <c1@example.com>"
    assert message.get_content() == "|Maria Berger|Newsletter"  # a missing organization renders empty
    assert composer.envelope_from == "news@shop.example"


def test_delivery_recipient_never_gives_templates_none():
    recipient = delivery_recipient(pending_mail(1))
    assert None not in recipient.contact.values() and None not in recipient.salesperson.values()


def test_a_failing_template_is_a_render_failure_naming_the_cause():
    composer = Composer(mailing(), variant(subject="{{ contact.nickname }}"))
    failed = composer.compose_delivery(7, pending_mail(1), date=DATE)
    assert isinstance(failed, RenderFailed)
    assert failed.reason.startswith("rendering failed: ") and "nickname" in failed.reason


def test_a_test_mail_composer_prefixes_the_subject_and_adds_its_header():
    composer = Composer(
        mailing(), variant(), subject_prefix="[TEST] ", extra_headers={"X-Segmail-Test": "yes"}
    )
    recipient = delivery_recipient(pending_mail(1))
    composed = composer.compose(recipient, message_id="<t@shop.example>", date=DATE)
    message = message_from_bytes(composed.data, policy=policy.default)
    assert composed.subject == message["Subject"] == "[TEST] Hello First1"
    assert message["X-Segmail-Test"] == "yes"


@pytest.mark.parametrize(
    ("address", "domain"),
    [
        pytest.param("Shop <news@shop.example>", "shop.example", id="name-and-address"),
        pytest.param("news@shop.example", "shop.example", id="bare-address"),
        pytest.param("", "segmail.local", id="no-address-falls-back"),
    ],
)
def test_sender_domain(address, domain):
    assert sender_domain(address) == domain
