"""In-memory stand-ins for the database and the SMTP server of sending (GUIDE §3: a fake per interface)."""

from __future__ import annotations

import smtplib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from jinja2 import StrictUndefined, Template
from segmail.mailings.definition import Mailing
from segmail.mailings.deliveries import Batch, Outcome, PendingMail
from segmail.mailings.render import CompiledVariant
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

    def flush(self) -> None:
        self.flushes += 1
        for outcome in self.buffer:
            if self.status[outcome.delivery_id] == DeliveryStatus.PENDING:
                self.status[outcome.delivery_id] = outcome.status
                self.written[outcome.delivery_id] = outcome
                if outcome.activity is not None:
                    self.activity.append(outcome.activity)
        self.buffer = []

    def fail_pending(self, delivery_ids: list[int], *, reason: str) -> None:
        for delivery_id in delivery_ids:
            if self.status[delivery_id] == DeliveryStatus.PENDING:
                self.status[delivery_id] = DeliveryStatus.FAILED
                self.failed_reasons[delivery_id] = reason


@dataclass
class FakeTransport:
    """An SMTP server by script: `replies[recipient]` is raised (an exception) or returned (code, text)."""

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
