"""In-memory stand-ins for the database and the SMTP server of sending (GUIDE §3: a fake per interface)."""

from __future__ import annotations

import smtplib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from jinja2 import StrictUndefined, Template
from segmail.mailings.definition import Mailing
from segmail.mailings.deliveries import Batch, Outcome, PendingMail
from segmail.mailings.render import CompiledVariant
from segmail.mailings.transport import Outgoing, Result, SendErrorKind, classify
from segmail.store.models import DeliveryStatus


def mailing(**overrides) -> Mailing:
    data = {
        "slug": "spring",
        "name": "Spring",
        "audience": {"segments": ["Newsletter"]},
        "from": "Shop <news@shop.example>",
        "default_language": "en",
        "variants": {"en": {"subject": "x", "body": "spring/en.txt", "html": False}},
        **overrides,
    }
    return Mailing.model_validate(data)


def variant(
    subject: str = "Hello {{ contact.first_name }}", text: str = "Dear {{ contact.first_name }}"
) -> CompiledVariant:
    return CompiledVariant(
        language="en",
        subject=Template(subject, undefined=StrictUndefined),
        text=Template(text, undefined=StrictUndefined),
        html=None,
        from_addr="Shop <news@shop.example>",
        reply_to=None,
    )


def pending_mail(delivery_id: int, **overrides) -> PendingMail:
    data = {
        "id": delivery_id,
        "contact_id": 100 + delivery_id,
        "email": f"c{delivery_id}@example.com",
        "first_name": f"First{delivery_id}",
        "last_name": "Last",
        "country_code": "DE",
        "sp_code": "MB",
        **overrides,
    }
    return PendingMail(**data)


@dataclass
class FakeStore:
    """Holds one batch's deliveries as {id: status}; only `flush` writes, and only over `pending`."""

    mails: list[PendingMail]
    dry_run: bool = False
    run_id: int = 7
    status: dict[int, DeliveryStatus] = field(default_factory=dict)
    written: dict[int, Outcome] = field(default_factory=dict)
    activity: list = field(default_factory=list)
    buffer: list[Outcome] = field(default_factory=list)
    failed_reasons: dict[int, str] = field(default_factory=dict)
    flushes: int = 0
    blocked_now: dict[int, str] = field(default_factory=dict)  # what `blocked` answers at this moment
    blocked_calls: int = 0
    writes: list[list[int]] = field(default_factory=list)  # delivery ids per durable write
    replies: dict[int, tuple[int, str]] = field(default_factory=dict)  # last SMTP reply of a pending mail
    closed: bool = False

    def __post_init__(self) -> None:
        self.status = self.status or {m.id: DeliveryStatus.PENDING for m in self.mails}

    def load_batch(self, batch_id: int) -> tuple[Batch, list[PendingMail]]:
        batch = Batch(batch_id, self.run_id, "spring", "en", self.dry_run)
        return batch, [m for m in self.mails if self.status[m.id] == DeliveryStatus.PENDING]

    def blocked(self, batch_id: int) -> dict[int, str]:
        self.blocked_calls += 1
        return dict(self.blocked_now)

    def record(self, outcome: Outcome) -> None:
        self.buffer.append(outcome)

    def write(self, outcomes: list[Outcome]) -> None:
        self.writes.append([o.delivery_id for o in outcomes])
        self.buffer += outcomes
        self.flush()

    def flush(self) -> None:
        self.flushes += 1
        for outcome in self.buffer:
            if self.status[outcome.delivery_id] != DeliveryStatus.PENDING:
                continue
            if outcome.status == DeliveryStatus.PENDING:
                if outcome.code is not None:  # the last reply stays on the pending row
                    self.replies[outcome.delivery_id] = (outcome.code, outcome.response)
                continue
            self.status[outcome.delivery_id] = outcome.status
            self.written[outcome.delivery_id] = outcome
            if outcome.activity is not None:
                self.activity.append(outcome.activity)
        self.buffer = []

    def close(self) -> None:
        self.closed = True

    def fail_pending(self, delivery_ids: list[int], *, reason: str) -> None:
        for delivery_id in delivery_ids:
            if self.status[delivery_id] == DeliveryStatus.PENDING:
                self.status[delivery_id] = DeliveryStatus.FAILED
                self.failed_reasons[delivery_id] = reason


@dataclass
class FakeTransport:
    """An SMTP server by script: `replies[recipient]` is raised (an exception) or returned (code, text).

    `send_all` works like one SMTP connection: one mail per round, its result recorded before the
    next mail is taken; it stops taking mails after a lost connection, and lets any error that is
    not an SMTP or connection error through (an interrupted task)."""

    replies: dict[str, object] = field(default_factory=dict)
    sent: list[tuple[str, str, bytes]] = field(default_factory=list)
    after_send: object = None  # called with the recipient after each accepted mail
    opened: int = 0
    closed: int = 0
    connected: bool = False

    def __enter__(self) -> FakeTransport:
        self.opened += 1
        self.connected = True
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.closed += 1
        self.connected = False

    def send(self, envelope_from: str, recipient: str, data: bytes) -> tuple[int, str]:
        assert self.connected, "send outside `with transport`"
        reply = self.replies.get(recipient, (250, "2.0.0 Ok: queued"))
        if isinstance(reply, BaseException):
            raise reply
        self.sent.append((envelope_from, recipient, data))
        if self.after_send is not None:
            self.after_send(recipient)
        return reply

    def send_all(self, mails: Iterator[Outgoing], record: Callable[[list[Result]], None]) -> None:
        for mail in mails:
            try:
                code, text = self.send(mail.envelope_from, mail.recipient, mail.data)
            except (smtplib.SMTPException, OSError) as exc:
                error = classify(exc)
                record([Result(mail, error=error)])
                if error.kind == SendErrorKind.DISCONNECTED:
                    return
                continue
            record([Result(mail, code, text)])

    def refuse(self, recipient: str, code: int, text: str) -> None:
        self.replies[recipient] = smtplib.SMTPRecipientsRefused({recipient: (code, text.encode())})

    def drop_at(self, recipient: str) -> None:
        self.replies[recipient] = smtplib.SMTPServerDisconnected("Connection unexpectedly closed")

    @property
    def recipients(self) -> list[str]:
        return [recipient for _, recipient, _ in self.sent]


@dataclass
class FakeClock:
    """Monotonic time that only moves when sending sleeps (or a test advances it)."""

    t: float = 1000.0
    sleeps: list[float] = field(default_factory=list)
    start: datetime = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)

    def monotonic(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.t - 1000.0)


class ScriptedSmtp:
    """The part of `smtplib.SMTP` a transport lane uses, in front of a tiny SMTP server by script.

    It reads what the client writes as a server would (commands; after a 354 the content up to the
    lone dot) and queues the replies `getreply` hands out, so pipelined and lock-step dialogues are
    both exercised byte for byte. `script[(verb, address)]` overrides a reply: verb MAIL (by sender),
    RCPT, DATA (the DATA command) or CONTENT (the reply after the dot), by recipient; a reply of
    None drops the connection instead of answering. `writes` keeps every write as it went out,
    `delivered` the accepted mails as (recipient, content).
    """

    OK = {
        "MAIL": (250, b"2.1.0 Ok"),
        "RCPT": (250, b"2.1.5 Ok"),
        "DATA": (354, b"End data with <CR><LF>.<CR><LF>"),
    }

    def __init__(self, script: dict | None = None, *, pipelining: bool = True) -> None:
        self.script = script or {}
        self.pipelining = pipelining
        self.writes: list[bytes] = []
        self.delivered: list[tuple[str, bytes]] = []
        self.replies: list[tuple[int, bytes]] = []
        self.commands: list[str] = []
        self.closed = self.quitted = False
        self.sender: str | None = None
        self.recipient: str | None = None
        self.content: bytes | None = None  # collecting the message after a 354
        self.pending = b""

    def has_extn(self, name: str) -> bool:
        return name.lower() == "pipelining" and self.pipelining

    def send(self, data: bytes) -> None:
        if self.closed:
            raise smtplib.SMTPServerDisconnected("please run connect() first")
        self.writes.append(data)
        self.pending += data
        while not self.closed and self._serve_one():
            pass

    def getreply(self) -> tuple[int, bytes]:
        if not self.replies:
            self.closed = True
            raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
        return self.replies.pop(0)

    def quit(self) -> None:
        self.send(b"QUIT\r\n")
        self.quitted = True
        self.closed = True

    def close(self) -> None:
        self.closed = True

    def _serve_one(self) -> bool:
        if self.content is not None:
            end = self.pending.find(b"\r\n.\r\n")
            if end < 0:
                return False
            self.content, self.pending = self.pending[: end + 2], self.pending[end + 5 :]
            self._answer(("CONTENT", self.recipient), (250, b"2.0.0 Ok: queued"), accept=True)
            self.content = self.sender = self.recipient = None
            return True
        line, sep, rest = self.pending.partition(b"\r\n")
        if not sep:
            return False
        self.pending = rest
        command = line.decode()
        self.commands.append(command.split(":")[0].split(" ")[0])
        self._command(command)
        return True

    def _command(self, command: str) -> None:
        verb = command[:4]
        address = command.partition("<")[2].rstrip(">")
        if verb == "MAIL":
            if self._answer(("MAIL", address), self.OK["MAIL"]):
                self.sender = address
        elif verb == "RCPT":
            if self.sender is None:
                self.replies.append((503, b"5.5.1 Error: need MAIL command"))
            elif self._answer(("RCPT", address), self.OK["RCPT"]):
                self.recipient = address
        elif verb == "DATA":
            if self.recipient is None:
                self.replies.append((554, b"5.5.1 Error: no valid recipients"))
            elif self._answer(("DATA", self.recipient), self.OK["DATA"]) == 354:
                self.content = b""
        elif verb in ("RSET", "QUIT"):
            self.sender = self.recipient = None
            self.replies.append((250 if verb == "RSET" else 221, b"Ok"))

    def _answer(self, key: tuple, default: tuple[int, bytes], *, accept: bool = False) -> int | None:
        reply = self.script.get(key, default)
        if reply is None:  # the server goes away without a word
            self.closed = True
            return None
        code, text = reply
        self.replies.append((code, text if isinstance(text, bytes) else text.encode()))
        if accept and code == 250:
            self.delivered.append((self.recipient, self.content))
        if code == 421:
            self.closed = True
        return code if code < 400 else None
