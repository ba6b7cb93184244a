"""Message building and mailing definitions, on tiny inputs."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy

import pytest
from jinja2 import Template
from segmail.addresses import safe_address
from segmail.errors import SegmailError
from segmail.mailings.definition import Mailing, load_mailing
from segmail.mailings.mime import MessageFactory
from segmail.mailings.render import Attachment, CompiledVariant, html_to_text


def variant(**overrides) -> CompiledVariant:
    base = dict(
        language="en",
        subject=Template("x"),
        text=Template("t"),
        html=None,
        from_addr="Shop <news@shop.example>",
        reply_to=None,
        attachments=[],
    )
    base.update(overrides)
    return CompiledVariant(**base)


def build(factory: MessageFactory, **fields) -> bytes:
    """A message to Eve; `fields` override the defaults."""
    defaults = dict(
        to_name="Eve",
        to_addr="eve@example.com",
        subject="Hi",
        text="body",
        html=None,
        message_id="<m@shop.example>",
        date=datetime(2026, 11, 1, tzinfo=UTC),
    )
    return factory.build(**{**defaults, **fields})


@pytest.mark.parametrize(
    ("name", "subject"),
    [
        pytest.param("Eve\r\nBcc: victim@example.com", "Hi", id="crlf-in-name"),
        pytest.param("Eve", "Hello\r\nBcc: victim@example.com", id="crlf-in-subject"),
        pytest.param("Eve\nX-Injected: 1", "Hi\nX-Injected: 1", id="lf-only"),
        pytest.param("Zoë \u2028 Test", "Grüße\rX-Injected: 1", id="unicode-separators"),
    ],
)
def test_contact_data_cannot_inject_headers(name, subject):
    data = build(MessageFactory(variant(), domain="shop.example"), to_name=name, subject=subject)
    message = message_from_bytes(data, policy=policy.default)
    assert message["Bcc"] is None and message["X-Injected"] is None
    assert set(message.keys()) == {
        "To",
        "Subject",
        "Date",
        "Message-ID",
        "From",
        "MIME-Version",
        "Content-Type",
        "Content-Transfer-Encoding",
    }
    assert message["To"].addresses[0].addr_spec == "eve@example.com"


def test_non_ascii_subject_and_names_are_encoded_and_decode_back():
    factory = MessageFactory(variant(from_addr="Autohaus Müller <a@b.example>"), domain="b.example")
    data = factory.build(
        to_name="Zoë Lefèvre",
        to_addr="z@example.fr",
        subject="Grüße aus Köln – €89",
        text="ü",
        html="<p>ü</p>",
        message_id="<1@b.example>",
        date=datetime.now(UTC),
    )
    assert data.isascii()  # everything 8-bit is encoded
    message = message_from_bytes(data, policy=policy.default)
    assert message["Subject"] == "Grüße aus Köln – €89"
    assert message["To"] == "Zoë Lefèvre <z@example.fr>"
    assert message["From"] == "Autohaus Müller <a@b.example>"
    assert message.get_body(("html",)).get_content() == "<p>ü</p>"


@pytest.mark.parametrize("address", ["a@b.example", "first.last+tag@sub.example.co.uk"])
def test_safe_addresses(address):
    assert safe_address(address) == address


@pytest.mark.parametrize(
    "address", ["", None, "no-at", "a@b", "a b@c.de", "a@b.de\r\nBcc: x@y.z", "ä@b.de", "<a@b.de>"]
)
def test_unsafe_addresses_are_refused(address):
    assert safe_address(address) is None


def test_html_to_text_keeps_links_and_structure():
    text = html_to_text(
        '<h1>Hi {{ contact.first_name }}</h1><p>See <a href="https://x.example/a">offer</a>'
        "&nbsp;&amp; more</p><style>p{}</style><ul><li>One</li><li>Two</li></ul>"
    )
    assert "Hi {{ contact.first_name }}" in text
    assert "offer (https://x.example/a)" in text
    assert "\u00a0& more" in text
    assert "- One" in text and "p{}" not in text


def test_sandbox_blocks_unsafe_template_code(tmp_path):
    from jinja2.exceptions import SecurityError
    from segmail.mailings.render import _environment

    template = _environment(html=True).from_string("{{ contact.__class__.__mro__ }}")
    with pytest.raises(SecurityError):
        template.render(contact={}).startswith("(")
    escaped = (
        _environment(html=True)
        .from_string("<p>{{ contact.first_name }}</p>")
        .render(contact={"first_name": "<script>alert(1)</script>"})
    )
    assert escaped == "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>"


MINIMAL = """
name: Test
audience: {segments: [A]}
from: "Shop <a@b.example>"
default_language: en
variants:
  en: {subject: Hi, body: x.html}
"""


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param(
            ("default_language: en", "default_language: de"),
            "default_language 'de' has no variant",
            id="default-without-variant",
        ),
        pytest.param(
            ("name: Test", "name: Test\nbatch_sise: 5"),
            "batch_sise: Extra inputs are not permitted",
            id="typo-in-field",
        ),
        pytest.param(
            ("name: Test", "name: Test\nschedule: every day"),
            "is neither a cron expression",
            id="bad-schedule",
        ),
        pytest.param(
            ("  en: {subject: Hi", "  english: {subject: Hi"),
            "variants: Value error, 'english' is not",
            id="bad-language-code",
        ),
        pytest.param(
            ("audience: {segments: [A]}", "audience: {segments: []}"),
            "audience.segments",
            id="empty-audience",
        ),
    ],
)
def test_definition_errors_name_the_file_and_field(tmp_path, change, message):
    path = tmp_path / "promo.yaml"
    path.write_text(MINIMAL.replace(*change))
    with pytest.raises(SegmailError) as exc:
        load_mailing(path)
    assert str(exc.value).startswith("promo.yaml: ")
    assert message in str(exc.value)


def test_language_choice_exact_then_base_then_default(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text(
        MINIMAL.replace(
            "  en: {subject: Hi, body: x.html}",
            "  en: {subject: Hi, body: x.html}\n  de: {subject: Hallo, body: x.html}\n"
            "  de-CH: {subject: Grüezi, body: x.html}",
        )
    )
    mailing: Mailing = load_mailing(path)
    assert [mailing.variant_for(code) for code in ("de-CH", "de-at", "DE", "fr-CA", None, "")] == [
        "de-CH",
        "de",
        "de",
        "en",
        "en",
        "en",
    ]


def test_a_scheduled_run_that_starts_too_late_is_not_sent(tmp_path):
    from datetime import timedelta

    path = tmp_path / "m.yaml"
    path.write_text(MINIMAL + "max_lateness_hours: 6\n")
    mailing = load_mailing(path)
    due = datetime(2026, 11, 1, 8, tzinfo=UTC)
    assert mailing.too_late(scheduled_for=due, now=due + timedelta(hours=5)) is None
    reason = mailing.too_late(scheduled_for=due, now=due + timedelta(days=21))
    assert reason.startswith("scheduled for 2026-11-01 08:00 UTC, starting 21 days, 0:00:00 later")
    assert mailing.too_late(scheduled_for=None, now=due) is None


@pytest.mark.parametrize(
    ("html", "attachments", "subject", "name"),
    [
        pytest.param(None, [], "Hi", "Eve", id="text-only"),
        pytest.param("<p>.Dot at a line start</p>\n.x", [], "Hi", "Eve", id="html-with-dots-and-lf"),
        pytest.param(
            "<p>Grüße</p>",
            [Attachment("preise.pdf", "application/pdf", b".%PDF\n" * 500)],
            "Grüße aus Köln, " * 12,
            "Zoë Müller " * 10,
            id="attachment-long-non-ascii-headers",
        ),
    ],
)
def test_built_messages_are_already_in_smtp_data_form(html, attachments, subject, name):
    """What `Outgoing(ready=True)` relies on: CRLF line ends only and no line starting with a dot,
    also after DKIM signing, so the transport adds only the final dot."""
    from segmail.mailings.dkim import sign
    from segmail.mailings.transport import wire_data
    from unit.mailings.test_dkim import rsa_key

    factory = MessageFactory(
        variant(attachments=attachments), domain="shop.example", list_id="n.shop.example"
    )
    data = build(
        factory,
        to_name=name,
        subject=subject,
        text=".leading dot\nand a bare LF\r.",
        html=html,
        list_unsubscribe="<https://u.shop.example/u/u.1.2.abc>",
        one_click=True,
    )
    for message in (data, sign(data, rsa_key()[0])):
        assert wire_data(message) == message + b".\r\n"
        assert all(len(line) <= 998 for line in message.split(b"\r\n"))
