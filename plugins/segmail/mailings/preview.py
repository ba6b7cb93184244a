"""Previews: one mail built by the composer that sending uses, then read back with `email`.

Nothing is rendered here: the bytes come from `Composer.compose` (a run's mail from
`compose_delivery`, with its Message-ID, signed unsubscribe token and return path), so what the
preview shows is what the transport would hand to the server. A preview outside a run gets links
signed for the TEST purpose: they open the unsubscribe page but change nothing. Template errors come
back as text naming the template file and line, never as an exception.
"""

from __future__ import annotations

import email
import email.policy
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import TypeVar

from jinja2 import Template, TemplateSyntaxError

from segmail.errors import SegmailError
from segmail.feedback.links import MailLinks
from segmail.mailings.compose import Composed, Composer, RenderFailed, composer_for, delivery_recipient
from segmail.mailings.definition import Mailing, templates_dir
from segmail.mailings.deliveries import PendingMail
from segmail.mailings.render import SAMPLE_CONTACT, SAMPLE_UNSUBSCRIBE_URL, CompiledVariant, compiled_variant
from segmail.sms.encoding import SmsLength
from segmail.store.models import Channel

PENDING_FIELDS = tuple(f.name for f in fields(PendingMail))
Compiled = TypeVar("Compiled")


@dataclass(frozen=True)
class AttachmentInfo:
    name: str
    content_type: str
    size: int


@dataclass
class MailPreview:
    """What one mail would be: its headers in order, envelope sender, parts and attachments."""

    language: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    envelope_from: str = ""
    subject: str = ""
    text: str | None = None
    html: str | None = None
    attachments: list[AttachmentInfo] = field(default_factory=list)
    size: int = 0
    error: str | None = None  # the template (or setup) error that stops this mail
    warnings: list[str] = field(default_factory=list)
    sms: SmsLength | None = None  # an SMS: encoding, characters and parts of `text`


def pending_mail(row: dict) -> PendingMail:
    """A PendingMail from a read.preview_contact / read.run_delivery row (extra keys ignored); a
    contact without e-mail (a run skips it) is shown with an empty To address."""
    return PendingMail(**{name: row.get(name) for name in PENDING_FIELDS} | {"email": row.get("email") or ""})


def sample_mail(mailing: Mailing, *, salesperson: dict | None) -> PendingMail:
    """The sample contact as a mail of the mailing's first audience segment."""
    sp = salesperson or {}
    contact = {k: v for k, v in SAMPLE_CONTACT.items() if k != "mobile"}
    return PendingMail(
        id=0,
        contact_id=0,
        mobile_e164=SAMPLE_CONTACT["mobile"],
        segment=mailing.audience.segments[0],
        sp_code=sp.get("code"),
        sp_name=sp.get("name"),
        sp_email=sp.get("email"),
        **contact,
    )


def preview_mail(
    mailing: Mailing,
    language: str,
    *,
    mail: PendingMail,
    run_id: int | None = None,
    date: datetime | None = None,
) -> MailPreview:
    """One language's mail to `mail`'s contact; for a run (`run_id`) exactly as that run sends it."""
    if mailing.channel == Channel.SMS:
        return preview_sms(mailing, language, mail=mail)
    preview = MailPreview(language=language)
    variant = _compiled(compiled_variant, mailing, language, preview)
    if variant is None:
        return preview
    composer = _composer(mailing, variant, preview)
    try:
        composed = _compose(composer, mail, run_id=run_id, date=date or datetime.now(UTC))
    except Exception as exc:  # sending would stop on it too; the page says what it is
        preview.error = f"the mail cannot be built: {type(exc).__name__}: {exc}"
        return preview
    if isinstance(composed, RenderFailed):
        preview.error = f"rendering failed: {composed.error}{_where(composed.error, variant)}"
        return preview
    preview.envelope_from = composed.envelope_from
    preview.subject = composed.subject
    _read_message(composed.data, preview)
    return preview


_PLACEHOLDER_LINKS = MailLinks(SAMPLE_UNSUBSCRIBE_URL, None)


def preview_sms(mailing: Mailing, language: str, *, mail: PendingMail) -> MailPreview:
    """One SMS as `segmail.sms.send` prepares it: the same compiled template, context and limits."""
    from segmail.sms.render import compile_sms, sms_context

    preview = MailPreview(language=language)
    compiled = _compiled(compile_sms, mailing, language, preview)
    if compiled is None:
        return preview
    recipient = delivery_recipient(mail)
    context = sms_context(
        contact=recipient.contact,
        segment=recipient.segment,
        salesperson=recipient.salesperson,
        mailing=mailing,
    )
    try:
        preview.text = compiled.render(context)
    except Exception as exc:
        preview.error = f"rendering failed: {exc}{_where(exc, None)}"
        return preview
    preview.sms, too_long = compiled.too_long(preview.text)
    preview.headers = [("From", compiled.sender), ("To", mail.mobile_e164 or "")]
    preview.size = len(preview.text)
    if not preview.text:
        preview.error = "rendering failed: the message is empty"
    elif too_long:
        preview.warnings.append(f"Sending would fail this message: {too_long}.")
    return preview


def _compose(
    composer: Composer, mail: PendingMail, *, run_id: int | None, date: datetime
) -> Composed | RenderFailed:
    """A run's mail as `send_batch` composes it; outside a run, with links signed for TEST."""
    if run_id is not None and composer.links is not None:
        return composer.compose_delivery(run_id, mail, date=date)
    links = composer.links.for_test_mail() if composer.links is not None else _PLACEHOLDER_LINKS
    message_id = composer.message_id(run_id or 0, f"preview.{mail.contact_id or 'sample'}")
    return composer.compose(delivery_recipient(mail), message_id=message_id, date=date, links=links)


def _composer(mailing: Mailing, variant: CompiledVariant, preview: MailPreview) -> Composer:
    """Sending's composer; when its unsubscribe links or DKIM key are not set up (sending would stop
    there) the preview still renders, with a placeholder link, and says why."""
    try:
        return composer_for(mailing, variant)
    except Exception as exc:
        preview.warnings.append(f"Sending would fail: {exc}. Shown with a placeholder unsubscribe link.")
        return Composer(mailing, variant, links=None)  # type: ignore[arg-type]


def _compiled(
    compile_: Callable[[Mailing, str], Compiled], mailing: Mailing, language: str, preview: MailPreview
) -> Compiled | None:
    """The language's compiled templates, as sending compiles them; else None, and the preview says
    why — with the template's file and line when Jinja names them — instead of the page failing."""
    try:
        return compile_(mailing, language)
    except SegmailError as exc:
        preview.error = _compile_error(exc)
    except Exception as exc:  # an unreadable template file, a broken attachment path
        preview.error = f"{type(exc).__name__}: {exc}"
    return None


def _compile_error(exc: SegmailError) -> str:
    """The compiler's message plus the file and line Jinja reported (its message alone has neither)."""
    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, TemplateSyntaxError) and cause.lineno:
        name = cause.name or cause.filename or "subject"
        return f"{exc} (in {name}, line {cause.lineno})"
    return str(exc)


def _where(error: BaseException, variant: CompiledVariant | None) -> str:
    """` (in <template>, line N)`: the template frame deepest in the traceback, mapped to its line."""
    found = ""
    tb = error.__traceback__
    while tb is not None:
        template = tb.tb_frame.f_globals.get("__jinja_template__")
        if isinstance(template, Template):
            line = template.get_corresponding_lineno(tb.tb_lineno)
            found = f" (in {_template_label(template, variant)}, line {line})"
        elif "__jinja_exception__" in tb.tb_frame.f_globals:  # a frame of Jinja's rewritten traceback
            name = tb.tb_frame.f_code.co_filename.removeprefix(f"{templates_dir()}/")
            found = f" (in {'the message' if name == '<template>' else name}, line {tb.tb_lineno})"
        tb = tb.tb_next
    return found


def _template_label(template: Template, variant: CompiledVariant | None) -> str:
    if variant is None:
        return template.name or "the message"
    if template is variant.subject:
        return "the subject"
    if template is variant.text and template.name is None:
        return "the text part made from the HTML body"
    return template.name or "a template"


def _read_message(data: bytes, preview: MailPreview) -> None:
    """Headers, bodies and attachments as a mail program sees them."""
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    preview.size = len(data)
    preview.headers = [(name, str(value)) for name, value in message.items()]
    for part in message.walk():
        if part.is_multipart():
            continue
        if part.get_content_disposition() == "attachment":
            payload = part.get_payload(decode=True) or b""
            name = part.get_filename() or "(no name)"
            preview.attachments.append(AttachmentInfo(name, part.get_content_type(), len(payload)))
        elif part.get_content_type() == "text/html" and preview.html is None:
            preview.html = part.get_content()
        elif part.get_content_type() == "text/plain" and preview.text is None:
            preview.text = part.get_content()
