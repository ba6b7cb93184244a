"""Composing: a recipient and a compiled variant become a Message-ID and the bytes of one mail.

Shared by a run's sending and by test mails, so a test mail is built exactly like the real one.
A template that fails for one recipient is a `RenderFailed` for that mail, not an exception that
stops the batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.utils import parseaddr

from segmail.feedback.links import MailLinks, UnsubscribeLinks, unsubscribe_links
from segmail.mailings.definition import Mailing
from segmail.mailings.deliveries import PendingMail
from segmail.mailings.dkim import DkimKey, dkim_key_from_connection
from segmail.mailings.dkim import sign as dkim_sign
from segmail.mailings.mime import MessageFactory
from segmail.mailings.render import CompiledVariant, message_context


def sender_domain(address: str) -> str:
    return parseaddr(address)[1].rpartition("@")[2] or "segmail.local"


@dataclass(frozen=True)
class Recipient:
    name: str
    address: str
    contact: dict
    segment: str | None
    salesperson: dict | None


@dataclass(frozen=True)
class Composed:
    message_id: str
    subject: str
    data: bytes
    envelope_from: str


@dataclass(frozen=True)
class RenderFailed:
    error: Exception

    @property
    def reason(self) -> str:
        return f"rendering failed: {self.error}"


def delivery_recipient(mail: PendingMail) -> Recipient:
    """The recipient of a delivery, with the contact and salesperson fields templates may use."""
    contact = {
        "first_name": mail.first_name,
        "last_name": mail.last_name,
        "email": mail.email,
        "organization": mail.organization or "",
        "account_number": mail.account_number or "",
        "country_code": mail.country_code,
        "external_id": mail.external_id or "",
        "language": mail.language or "",
        "mobile": mail.mobile_e164 or "",
    }
    salesperson = {"code": mail.sp_code or "", "name": mail.sp_name or "", "email": mail.sp_email or ""}
    return Recipient(
        name=f"{mail.first_name} {mail.last_name}",
        address=mail.email,
        contact=contact,
        segment=mail.segment,
        salesperson=salesperson,
    )


class Composer:
    """One per run (or test send) and language: the MIME factory is prepared once.

    Every mail gets its own signed unsubscribe links (List-Unsubscribe, and `unsubscribe_url` in the
    body); with a `dkim:` block the finished bytes are signed last, over the final headers.
    """

    def __init__(
        self,
        mailing: Mailing,
        variant: CompiledVariant,
        *,
        links: UnsubscribeLinks,
        dkim_key: DkimKey | None = None,
        subject_prefix: str = "",
        extra_headers: dict[str, str] | None = None,
    ) -> None:
        self.mailing = mailing
        self.variant = variant
        self.links = links
        self.dkim_key = dkim_key
        self.subject_prefix = subject_prefix
        self.extra_headers = extra_headers
        self.factory = MessageFactory(
            variant, domain=sender_domain(variant.from_addr), list_id=mailing.list_id_value
        )
        self.envelope_from = self.factory.envelope_from

    def message_id(self, run_id: int, key: int | str) -> str:
        return self.factory.message_id(run_id, key)

    def compose(
        self,
        recipient: Recipient,
        *,
        message_id: str,
        date: datetime,
        links: MailLinks,
        envelope_from: str | None = None,
    ) -> Composed | RenderFailed:
        context = message_context(
            contact=recipient.contact,
            segment=recipient.segment,
            salesperson=recipient.salesperson,
            mailing=self.mailing,
            unsubscribe_url=links.for_templates,
        )
        try:
            subject, body_text, body_html = self.variant.render(context)
        except Exception as exc:  # a template that fails for one contact fails that mail, not the run
            return RenderFailed(exc)
        subject = self.subject_prefix + subject
        data = self.factory.build(
            to_name=recipient.name,
            to_addr=recipient.address,
            subject=subject,
            text=body_text,
            html=body_html,
            message_id=message_id,
            date=date,
            list_unsubscribe=links.list_unsubscribe,
            one_click=links.one_click,
            extra_headers=self.extra_headers,
        )
        if self.dkim_key is not None:
            data = dkim_sign(data, self.dkim_key)
        return Composed(message_id, subject, data, envelope_from or self.envelope_from)

    def compose_delivery(self, run_id: int, mail: PendingMail, *, date: datetime) -> Composed | RenderFailed:
        """A run's mail: its Message-ID is fixed per (run, contact), so a resend carries the same."""
        message_id = self.message_id(run_id, mail.contact_id)
        return self.compose(
            delivery_recipient(mail),
            message_id=message_id,
            date=date,
            links=self.links.for_delivery(mail.id),
            envelope_from=self.links.return_path(mail.id),
        )


def composer_for(mailing: Mailing, variant: CompiledVariant, **options) -> Composer:
    """A composer with the configured unsubscribe links and the mailing's DKIM key (if any)."""
    dkim_key = None
    if mailing.dkim is not None:
        dkim_key = dkim_key_from_connection(
            domain=mailing.dkim.domain, selector=mailing.dkim.selector, key_conn_id=mailing.dkim.key_conn_id
        )
    return Composer(mailing, variant, links=unsubscribe_links(), dkim_key=dkim_key, **options)
