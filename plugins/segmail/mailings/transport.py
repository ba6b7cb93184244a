"""The mail transport: SMTP connections from the SMTP provider's hook, pipelined when the server
offers PIPELINING (RFC 2920), used as a context manager like the hook.

`send_all(mails, record)` drives up to `connections` connections in rounds. In a round each
connection reads the replies to its mail's MAIL/RCPT/DATA, writes that mail's content (and, when
pipelining, the next mail's MAIL/RCPT/DATA in the same write), then reads the final reply; the
round's results go to `record`. The invariant the crash window rests on: **`record` returns before
any later mail's content is written on the same connection.** A caller that makes each result
durable in `record` has, at any moment, at most one mail per connection whose content went out and
whose result is not stored: the one in flight.

Replies are classified per mail, exactly as without pipelining: the first refusal among MAIL, RCPT
and DATA decides (the transaction is then reset with RSET, never given content), else the reply
to the content. A 5xx is `FAILED`, a 4xx `TRANSIENT`, a lost connection or a 421 `DISCONNECTED`
(nothing more goes over that connection; `send_all` stops taking new mails and returns).
"""

from __future__ import annotations

import logging
import re
import smtplib
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol, Self

from segmail.errors import SegmailError

log = logging.getLogger(__name__)


class TransientSendError(SegmailError):
    """Mails are left pending after a temporary failure; the task should be retried."""


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


class SmtpRefused(SegmailError):
    """A mail not accepted by `Transport.send`; `classify` returns its `SendError`."""

    def __init__(self, error: SendError) -> None:
        super().__init__(error.summary)
        self.error = error


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One mail for the wire; `key` is the caller's own handle, given back with the result.
    `ready` says the data is already in DATA form (CRLF line ends only, no line starting with a
    dot), as segmail's MIME factory builds it; other data is made so by `wire_data`."""

    key: Any
    envelope_from: str
    recipient: str
    data: bytes
    ready: bool = False


@dataclass(frozen=True, slots=True)
class Result:
    """What became of one mail: the final reply when it was accepted, else the error."""

    mail: Outgoing
    code: int | None = None
    text: str = ""
    error: SendError | None = None


Record = Callable[[list[Result]], None]


class Transport(Protocol):
    """What sending needs of a mail server; `SmtpHookTransport` for real, a fake in unit tests."""

    def __enter__(self) -> Self: ...
    def __exit__(self, *exc_info: object) -> None: ...
    def send(self, envelope_from: str, recipient: str, data: bytes) -> tuple[int, str]:
        """Send one mail; return the server's (code, reply) or raise (`classify` reads the error)."""
        ...

    def send_all(self, mails: Iterator[Outgoing], record: Record) -> None:
        """Send what `mails` yields; `record` gets each round's results and returns before any later
        mail's content is written on the same connection. Stops taking mails after a lost connection."""
        ...


def _text(reply: bytes | str) -> str:
    return reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)


def reply_error(code: int, reply: bytes | str) -> SendError:
    """A refusal the server said: 5xx fails the mail, 421 or an unreadable reply ends the connection,
    anything else (4xx, an unexpected code) is temporary."""
    text = _text(reply)
    if code == -1:
        return SendError(SendErrorKind.DISCONNECTED, None, f"connection lost: {text}")
    if code == 421:  # "service not available, closing transmission channel"
        return SendError(SendErrorKind.DISCONNECTED, code, text)
    kind = SendErrorKind.FAILED if 500 <= code < 600 else SendErrorKind.TRANSIENT
    return SendError(kind, code, text)


def classify(exc: BaseException) -> SendError:
    """What an error raised while sending means for the mail."""
    if isinstance(exc, SmtpRefused):
        return exc.error
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return reply_error(*next(iter(exc.recipients.values())))
    if isinstance(exc, smtplib.SMTPResponseException):
        return reply_error(exc.smtp_code, exc.smtp_error)
    if isinstance(exc, smtplib.SMTPServerDisconnected | ConnectionError | socket.timeout | OSError):
        return SendError(SendErrorKind.DISCONNECTED, None, f"connection lost: {exc or type(exc).__name__}")
    return SendError(SendErrorKind.TRANSIENT, None, f"{type(exc).__name__}: {exc}")


# ---------------------------------------------------------------- the SMTP dialogue of one connection

_UNSAFE_ADDRESS = re.compile(r"[\s<>]|[^\x21-\x7e]")
_STUFF = re.compile(rb"(?m)^\.")
_EOLS = re.compile(rb"\r\n|\r|\n")
_LOST = (OSError, smtplib.SMTPServerDisconnected)


def wire_data(data: bytes) -> bytes:
    """The message as DATA carries it: leading dots doubled and "." to end it, as smtplib does, and
    bare CR or LF (which SMTP forbids; smtplib sends them as they are) made CRLF."""
    if data.count(b"\n") != data.count(b"\r\n") or data.count(b"\r") != data.count(b"\r\n"):
        data = _EOLS.sub(b"\r\n", data)
    if data.startswith(b".") or b"\r\n." in data:
        data = _STUFF.sub(b"..", data)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


def _content(mail: Outgoing) -> bytes:
    return mail.data + b".\r\n" if mail.ready else wire_data(mail.data)


def envelope(mail: Outgoing) -> bytes:
    return b"MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n" % (
        mail.envelope_from.encode(),
        mail.recipient.encode(),
    )


def unsafe_address(mail: Outgoing) -> str | None:
    """Why an envelope address cannot go on the wire (None if it can); a sender address may be empty."""
    if (
        _UNSAFE_ADDRESS.search(mail.envelope_from)
        or not mail.recipient
        or _UNSAFE_ADDRESS.search(mail.recipient)
    ):
        return f"address not usable in SMTP: {mail.envelope_from!r} -> {mail.recipient!r}"
    return None


class Lane:
    """One SMTP connection as `send_all` drives it: at most one mail's content in flight.

    `client` is an open `smtplib.SMTP` (after EHLO, STARTTLS and login): only its `send`,
    `getreply`, `has_extn`, `quit` and `close` are used. With PIPELINING the next mail's
    MAIL/RCPT/DATA go out in the same write as the current mail's content; without it the
    dialogue is the classic one, one command per round trip.
    """

    def __init__(self, client: Any) -> None:
        self.client = client
        self.pipelining = bool(client.has_extn("pipelining"))
        self.mail: Outgoing | None = None  # the mail of this lane's transaction
        self.announced = False  # its MAIL/RCPT/DATA are written, their replies not read yet
        self.next: Outgoing | None = None  # announced behind the current content (pipelining)
        self.refusal: SendError | None = None  # the first refusal of the current envelope
        self.awaiting: bytes | None = None  # what the next reply answers: b"." (content) or b"RSET"
        self.loss: SendError | None = None  # why the connection is unusable

    @property
    def alive(self) -> bool:
        return self.loss is None

    @property
    def idle(self) -> bool:
        return self.mail is None

    def start(self, mail: Outgoing) -> None:
        """Take a mail while idle; pipelining, its envelope goes out at once."""
        self.mail = mail
        if self.pipelining and self._write(envelope(mail)):
            self.announced = True

    def transmit(self, pull: Callable[[], Outgoing | None]) -> None:
        """Read the envelope replies; write the content (or RSET after a refusal) and, pipelining,
        the envelope of the mail `pull` gives next, in one write."""
        if not self.alive or self.mail is None:
            return
        if self._envelope():
            out, self.awaiting = (_content(self.mail) if self.refusal is None else b".\r\n"), b"."
        elif self.alive:
            out, self.awaiting = b"RSET\r\n", b"RSET"
        else:
            return
        if self.pipelining and (following := pull()) is not None:
            self.next = following
            out += envelope(following)
        self._write(out)

    def collect(self) -> list[Result]:
        """The current mail's result (and, when the connection was lost, the announced next mail's:
        it never went out); then the announced mail becomes the current one."""
        if self.mail is None:
            return []
        results = [self._final()]
        following = self.next
        self.mail, self.next, self.announced, self.refusal, self.awaiting = None, None, False, None, None
        if following is not None:
            if self.alive:
                self.mail, self.announced = following, True
            else:
                results.append(Result(following, error=self.loss))
        return results

    def close(self) -> None:
        """QUIT when no transaction is open; otherwise drop the connection, so that a server
        waiting for content never receives a partial or empty message."""
        try:
            if self.alive and self.mail is None:
                self.client.quit()
            else:
                self.client.close()
        except (smtplib.SMTPException, OSError):
            self.client.close()
        self.loss = self.loss or _lost("closed")

    # ---------------------------------------------------------------- internals

    def _envelope(self) -> bool:
        """Whether the server waits for the content (354); notes the first refusal. A refusal or a
        421 said before the connection dropped still counts."""
        replies: list[tuple[int, bytes]] = []
        try:
            if self.announced:
                for _ in range(3):
                    replies.append(self.client.getreply())
            else:
                self._lockstep(replies)
        except _LOST as exc:
            self._judge(replies)
            return self._lose(classify(exc))
        return self._judge(replies)

    def _judge(self, replies: list[tuple[int, bytes]]) -> bool:
        for (code, reply), ok in zip(replies, _EXPECTED, strict=False):
            if code not in ok:
                error = reply_error(code, reply)
                if error.kind == SendErrorKind.DISCONNECTED:
                    return self._lose(error)
                self.refusal = self.refusal or error
        return len(replies) == 3 and replies[2][0] == 354

    def _lockstep(self, replies: list[tuple[int, bytes]]) -> None:
        """MAIL, RCPT and DATA one at a time, stopping at the first refusal."""
        commands = (b"MAIL FROM:<%s>\r\n" % self.mail.envelope_from.encode(),)
        commands += (b"RCPT TO:<%s>\r\n" % self.mail.recipient.encode(), b"DATA\r\n")
        for command, ok in zip(commands, _EXPECTED, strict=True):
            self.client.send(command)
            replies.append(self.client.getreply())
            if replies[-1][0] not in ok:
                return

    def _final(self) -> Result:
        if self.alive and self.awaiting is not None:
            try:
                code, reply = self.client.getreply()
            except _LOST as exc:
                self._lose(classify(exc))
            else:
                if self.awaiting == b"." and self.refusal is None:
                    return self._judged(code, reply)
                if self.awaiting == b"RSET" and code != 250:  # the transaction could not be reset
                    self._lose(
                        reply_error(code, reply) if code in (-1, 421) else _lost(f"RSET refused ({code})")
                    )
        return Result(self.mail, error=self.refusal or self.loss or _lost("no reply"))

    def _judged(self, code: int, reply: bytes) -> Result:
        if code == 250:
            return Result(self.mail, code, _text(reply))
        error = reply_error(code, reply)
        if error.kind == SendErrorKind.DISCONNECTED:
            self._lose(error)
        return Result(self.mail, error=error)

    def _write(self, data: bytes) -> bool:
        try:
            self.client.send(data)
        except _LOST as exc:
            return self._lose(classify(exc))
        return True

    def _lose(self, error: SendError) -> bool:
        """Nothing more goes over this connection."""
        if self.loss is None:
            self.loss = error
            self.client.close()
        return False


_EXPECTED = ((250,), (250, 251), (354,))  # MAIL, RCPT, DATA


def _lost(text: str) -> SendError:
    return SendError(SendErrorKind.DISCONNECTED, None, f"connection lost: {text}")


# ---------------------------------------------------------------- several connections in rounds


class _Source:
    """The caller's mails, pulled one at a time; mails that cannot go on the wire are answered at
    once, and after a lost connection no further mail is taken."""

    def __init__(self, mails: Iterator[Outgoing]) -> None:
        self.mails = mails
        self.answered: list[Result] = []
        self.stopped = False
        self.back: Outgoing | None = None

    def pull(self) -> Outgoing | None:
        if self.back is not None:
            mail, self.back = self.back, None
            return mail
        while not self.stopped:
            mail = next(self.mails, None)
            if mail is None:
                self.stopped = True
            elif (problem := unsafe_address(mail)) is not None:
                self.answered.append(Result(mail, error=SendError(SendErrorKind.FAILED, None, problem)))
            else:
                return mail
        return None

    def round_results(self, lanes: list[Lane]) -> list[Result]:
        results, self.answered = self.answered, []
        for lane in lanes:
            results += lane.collect()
        if any(r.error is not None and r.error.kind == SendErrorKind.DISCONNECTED for r in results):
            self.stopped = True
        return results


class SmtpHookTransport:
    """Up to `connections` SMTP connections from the Airflow connection, through the SMTP
    provider's hook: the hook connects, starts TLS and logs in; the dialogue is `Lane`'s, so each
    mail is sent once per call and its reply kept (the hook's own send retries on any error).
    The first connection opens on entering; more open when there are mails for them.
    """

    def __init__(self, conn_id: str, *, connections: int = 1) -> None:
        self.conn_id = conn_id
        self.connections = max(1, connections)
        self.lanes: list[Lane] = []

    def __enter__(self) -> Self:
        self.lanes = [self._open()]
        return self

    def __exit__(self, *exc_info: object) -> None:
        for lane in self.lanes:
            lane.close()
        self.lanes = []

    def _open(self) -> Lane:
        from airflow.providers.smtp.hooks.smtp import SmtpHook

        hook = SmtpHook(smtp_conn_id=self.conn_id)
        hook.get_conn()
        client = hook._smtp_client  # the hook exposes its client only through this attribute
        client.ehlo_or_helo_if_needed()
        return Lane(client)

    def send(self, envelope_from: str, recipient: str, data: bytes) -> tuple[int, str]:
        results: list[Result] = []
        self.send_all(iter([Outgoing(None, envelope_from, recipient, data)]), results.extend)
        (result,) = results
        if result.error is not None:
            raise SmtpRefused(result.error)
        return result.code, result.text

    def send_all(self, mails: Iterator[Outgoing], record: Record) -> None:
        source = _Source(mails)
        lanes = self._start(source)
        while lanes:
            for lane in lanes:
                if lane.idle and (mail := source.pull()) is not None:  # without pipelining
                    lane.start(mail)
                lane.transmit(source.pull)
            if results := source.round_results(lanes):
                record(results)
            lanes = [lane for lane in lanes if lane.alive and not (lane.idle and source.stopped)]
        if source.answered:
            record(source.round_results([]))
        self.lanes = [lane for lane in self.lanes if lane.alive]

    def _start(self, source: _Source) -> list[Lane]:
        """A first mail for each connection, opening connections as far as there are mails."""
        started = []
        for index in range(self.connections):
            mail = source.pull()
            if mail is None:
                break
            lane = self._lane(index)
            if lane is None:  # a further connection was refused: go on with the ones there are
                source.back = mail
                break
            lane.start(mail)
            started.append(lane)
        return started

    def _lane(self, index: int) -> Lane | None:
        if index < len(self.lanes):
            return self.lanes[index]
        try:
            lane = self._open()
        except Exception as exc:  # the first connection is open; more are an optimisation
            if not self.lanes:
                raise
            log.warning(
                "SMTP connection %d of %d not opened (%s); sending over %d",
                index + 1,
                self.connections,
                exc,
                len(self.lanes),
            )
            return None
        self.lanes.append(lane)
        return lane
