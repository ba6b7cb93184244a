"""Rendering an SMS variant: sandboxed Jinja, strict undefined, no autoescape (plain text, not HTML).

Templates see what e-mail templates see (contact, segment, salesperson, mailing) except
`unsubscribe_url`: an SMS carries no link to unsubscribe, recipients reply STOP. The rendered text
is stripped of surrounding whitespace (a template file's final newline would cost a character).
"""

from __future__ import annotations

from dataclasses import dataclass

from jinja2 import FileSystemLoader, StrictUndefined, Template, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from segmail import settings
from segmail.errors import SegmailError
from segmail.mailings.definition import Mailing, templates_dir
from segmail.mailings.render import message_context
from segmail.sms.definition import SmsVariant
from segmail.sms.encoding import SmsLength, measure


def _environment() -> SandboxedEnvironment:
    return SandboxedEnvironment(
        loader=FileSystemLoader(str(templates_dir())),
        autoescape=False,
        undefined=StrictUndefined,
        keep_trailing_newline=False,
    )


@dataclass(frozen=True)
class CompiledSms:
    language: str
    template: Template
    sender: str
    max_parts: int

    def render(self, context: dict) -> str:
        return self.template.render(context).strip()

    def too_long(self, text: str) -> tuple[SmsLength, str | None]:
        """The text's length, and why it may not be sent (more parts than the mailing allows)."""
        length = measure(text)
        if length.parts > self.max_parts:
            return length, f"too long: {length.describe()}, more than max_parts={self.max_parts}"
        return length, None


def sms_variant(mailing: Mailing, language: str) -> SmsVariant:
    variant = mailing.variants[language]
    if not isinstance(variant, SmsVariant):
        raise SegmailError(f"mailing {mailing.slug} is not an SMS mailing (channel: {mailing.channel})")
    return variant


def sender_for(mailing: Mailing, language: str) -> str:
    """The variant's sender, else the mailing's, else `default_sender` in the gateway connection's extra."""
    variant = sms_variant(mailing, language)
    if variant.sender or mailing.sender:
        return variant.sender or mailing.sender
    info = settings.connection(mailing.gateway_conn_id)
    extra = info.extra if info else {}
    sender = str(extra.get("default_sender") or "").strip()
    if not sender:
        raise SegmailError(
            f"{mailing.slug}.yaml: no sender for language {language}: set sender: in the file or"
            f' "default_sender" in the extra of the connection {mailing.gateway_conn_id}'
        )
    from segmail.sms.definition import check_sender

    try:
        return check_sender(sender)
    except ValueError as exc:
        raise SegmailError(f"connection {mailing.gateway_conn_id}: {exc}") from None


def compile_sms(mailing: Mailing, language: str, *, sender: str | None = None) -> CompiledSms:
    """Compile one language's message once per batch; the sender is resolved here too."""
    variant = sms_variant(mailing, language)
    env = _environment()
    try:
        template = (
            env.from_string(variant.text) if variant.text is not None else env.get_template(variant.body)
        )
    except TemplateError as exc:
        raise SegmailError(f"mailing {mailing.slug}, language {language}: template error: {exc}") from None
    return CompiledSms(
        language=language,
        template=template,
        sender=sender or sender_for(mailing, language),
        max_parts=mailing.max_parts,
    )


def sms_context(*, contact: dict, segment: str | None, salesperson: dict | None, mailing: Mailing) -> dict:
    """The variables an SMS template sees: an e-mail's, without the unsubscribe link."""
    context = message_context(contact=contact, segment=segment, salesperson=salesperson, mailing=mailing)
    del context["unsubscribe_url"]
    return context
