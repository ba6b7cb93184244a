"""The mail transport: one SMTP connection, used as a context manager like the SMTP provider's hook.

`with transport: transport.send(...)` opens the connection on entering and quits it on leaving.
An error raised while sending is read by `classify` into a `SendError`: a 5xx is `FAILED` (the
mail is final), a 4xx or an unknown error `TRANSIENT` (retry later), a lost connection
`DISCONNECTED` (nothing more can be sent over it).
"""

from __future__ import annotations

import re
import smtplib
import socket
from dataclasses import dataclass
from enum import StrEnum
from typing import NoReturn, Protocol, Self

from segmail.errors import SegmailError


class TransientSendError(SegmailError):
    """Mails are left pending after a temporary failure; the task should be retried."""


class Transport(Protocol):
    """What sending needs of a mail server; `SmtpHookTransport` for real, a fake in unit tests."""

    def __enter__(self) -> Self: ...
    def __exit__(self, *exc_info: object) -> None: ...
    def send(self, envelope_from: str, recipient: str, data: bytes) -> tuple[int, str]:
        """Send one mail; return the server's (code, reply) or raise."""
        ...


class SmtpHookTransport:
    """One SMTP connection from the Airflow connection, through the SMTP provider's hook.

    The hook connects, starts TLS and logs in; sending goes through MAIL/RCPT/DATA here so every
    mail is sent once per call and its reply is kept (the hook's own send retries on any error).
    """

    def __init__(self, conn_id: str) -> None:
        self.conn_id = conn_id
        self.hook = None
        self.client: smtplib.SMTP | None = None

    def __enter__(self) -> Self:
        from airflow.providers.smtp.hooks.smtp import SmtpHook

        self.hook = SmtpHook(smtp_conn_id=self.conn_id)
        self.hook.get_conn()
        self.client = self.hook._smtp_client  # the hook exposes its client only through this attribute
        self.client.ehlo_or_helo_if_needed()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.client is not None:
            try:
                self.client.quit()
            except (smtplib.SMTPException, OSError):
                self.client.close()
        self.client = None

    def send(self, envelope_from: str, recipient: str, data: bytes) -> tuple[int, str]:
        client = self.client
        code, reply = client.mail(envelope_from)
        if code != 250:
            self._refused(smtplib.SMTPSenderRefused(code, reply, envelope_from))
        code, reply = client.rcpt(recipient)
        if code not in (250, 251):
            self._refused(smtplib.SMTPRecipientsRefused({recipient: (code, reply)}))
        code, reply = client.data(data)
        if code != 250:
            self._refused(smtplib.SMTPDataError(code, reply))
        return code, _text(reply)

    def _refused(self, exc: smtplib.SMTPException) -> NoReturn:
        """Reset the transaction so the connection can carry the next mail, then raise."""
        self.client.rset()
        raise exc


class SendErrorKind(StrEnum):
    FAILED = "failed"  # permanent (5xx): the mail is failed with the server's reply
    TRANSIENT = "transient"  # temporary (4xx, unknown): the mail stays pending for the retry
    DISCONNECTED = "disconnected"  # the connection is gone: the rest of the batch waits too


_MAILBOX_UNKNOWN = re.compile(
    r"\b5\.1\.(?:1|10)\b|user unknown|unknown user|no such (?:user|mailbox|recipient)"
    r"|mailbox (?:does not|doesn't) exist|recipient address rejected: user",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class SendError:
    kind: SendErrorKind
    code: int | None
    text: str

    @property
    def mailbox_unknown(self) -> bool:
        """A permanent "no such mailbox" (5.1.1, 5.1.10, 550 user unknown): a hard bounce, said at once."""
        return self.kind == SendErrorKind.FAILED and bool(_MAILBOX_UNKNOWN.search(self.text))

    @property
    def summary(self) -> str:
        """'452 4.2.2 Mailbox full', or the text alone when there is no SMTP code."""
        return f"{self.code} {self.text}" if self.code else self.text


def _text(reply: bytes | str) -> str:
    return reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)


def classify(exc: BaseException) -> SendError:
    """What an error raised while sending means for the mail."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, reply = next(iter(exc.recipients.values()))
    elif isinstance(exc, smtplib.SMTPResponseException):
        code, reply = exc.smtp_code, exc.smtp_error
    elif isinstance(exc, smtplib.SMTPServerDisconnected | ConnectionError | socket.timeout | OSError):
        return SendError(SendErrorKind.DISCONNECTED, None, f"connection lost: {exc or type(exc).__name__}")
    else:
        return SendError(SendErrorKind.TRANSIENT, None, f"{type(exc).__name__}: {exc}")
    if code == -1:
        return SendError(SendErrorKind.DISCONNECTED, None, f"connection lost: {_text(reply)}")
    kind = SendErrorKind.FAILED if 500 <= code < 600 else SendErrorKind.TRANSIENT
    return SendError(kind, code, _text(reply))
