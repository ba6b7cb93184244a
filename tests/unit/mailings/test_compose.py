"""The composer: one recipient becomes a Message-ID and the bytes of a mail, or a render failure."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy

import pytest
from segmail.feedback.links import UnsubscribeLinks
from segmail.feedback.tokens import TokenPurpose, TokenSigner
from segmail.mailings.compose import Composed, Composer, RenderFailed, delivery_recipient, sender_domain
from unit.mailings.fakes import mailing, pending_mail, variant

DATE = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
LINKS = UnsubscribeLinks(TokenSigner((b"k" * 32,)), "https://u.shop.example", "unsubscribe@shop.example")


def test_a_delivery_is_composed_with_its_contacts_fields_and_a_message_id_per_run_and_contact():
    composer = Composer(
        mailing(),
        variant(text="{{ contact.organization }}|{{ salesperson.name }}|{{ segment.name }}"),
        links=LINKS,
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
    composer = Composer(mailing(), variant(subject="{{ contact.nickname }}"), links=LINKS)
    failed = composer.compose_delivery(7, pending_mail(1), date=DATE)
    assert isinstance(failed, RenderFailed)
    assert failed.reason.startswith("rendering failed: ") and "nickname" in failed.reason


def test_a_test_mail_composer_prefixes_the_subject_and_adds_its_header():
    composer = Composer(
        mailing(), variant(), links=LINKS, subject_prefix="[TEST] ", extra_headers={"X-Segmail-Test": "yes"}
    )
    recipient = delivery_recipient(pending_mail(1))
    composed = composer.compose(
        recipient, message_id="<t@shop.example>", date=DATE, links=LINKS.for_test_mail()
    )
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


def test_each_mail_carries_its_own_signed_unsubscribe_links_and_the_list_id():
    composer = Composer(mailing(), variant(text="Abmelden: {{ unsubscribe_url }}"), links=LINKS)
    first = message_from_bytes(
        composer.compose_delivery(7, pending_mail(1), date=DATE).data, policy=policy.default
    )
    second = message_from_bytes(
        composer.compose_delivery(7, pending_mail(2), date=DATE).data, policy=policy.default
    )
    url, mailto = [part.strip(" <>") for part in first["List-Unsubscribe"].split(",")]
    assert url.startswith("https://u.shop.example/u/") and mailto.startswith("mailto:unsubscribe+")
    token = url.rsplit("/", 1)[1]
    assert mailto == f"mailto:unsubscribe+{token}@shop.example"
    verified = LINKS.signer.verify(token)
    assert verified.purpose is TokenPurpose.UNSUBSCRIBE and verified.delivery_id == pending_mail(1).id
    assert first["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert first.get_content().strip() == f"Abmelden: {url}"
    assert second["List-Unsubscribe"] != first["List-Unsubscribe"]
    assert first["List-Id"] == second["List-Id"]


def test_without_a_public_url_there_is_no_one_click_promise():
    mailto_only = UnsubscribeLinks(LINKS.signer, None, "unsubscribe@shop.example")
    composer = Composer(mailing(), variant(text="{{ unsubscribe_url }}"), links=mailto_only)
    message = message_from_bytes(
        composer.compose_delivery(7, pending_mail(1), date=DATE).data, policy=policy.default
    )
    assert message["List-Unsubscribe"].startswith("<mailto:unsubscribe+")
    assert message["List-Unsubscribe-Post"] is None
    assert message.get_content().strip().startswith("mailto:unsubscribe+")


def test_with_a_bounce_domain_each_mail_has_its_own_signed_return_path():
    verp = UnsubscribeLinks(
        LINKS.signer, LINKS.public_url, LINKS.mailto, bounce_domain="bounces.shop.example"
    )
    composer = Composer(mailing(), variant(), links=verp)
    composed = composer.compose_delivery(7, pending_mail(1), date=DATE)
    local, domain = composed.envelope_from.split("@")
    assert domain == "bounces.shop.example" and local.startswith("bounces+b.")
    verified = LINKS.signer.verify(local.removeprefix("bounces+"))
    assert verified.purpose is TokenPurpose.BOUNCE and verified.delivery_id == pending_mail(1).id
    message = message_from_bytes(composed.data, policy=policy.default)
    assert message["From"] == "Shop <news@shop.example>"  # the From header stays as configured


def test_without_a_bounce_domain_the_from_address_is_the_envelope_sender():
    composed = Composer(mailing(), variant(), links=LINKS).compose_delivery(7, pending_mail(1), date=DATE)
    assert composed.envelope_from == "news@shop.example"
