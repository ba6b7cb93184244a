"""The door a send loop passes each mail through: the mailing's send window and the shared caps.

A send loop (e-mail's `segmail.mailings.send`, and SMS's) asks `admit()` before it hands a mail to
its transport. `admit()` answers from memory almost always: the window's closing time is known,
and units are reserved from the database in chunks (`segmail.throttle.budget`), so a mail costs a
clock read and two comparisons. When the window closes or a cap runs out, `admit()` says no and
`paused_until` says when sending may go on; the loop stops at that mail boundary, lets the mails in
flight finish and record, calls `release()` (in a `finally`: unused units go back), and the task
waits deferred until then (`segmail.orchestration.operators.SendBatchOperator`).

For another channel:

    gate = gate_for(mailing=…, connection_id="kannel", connection_kind=ConnectionKind.SMS, engine=…)
    try:
        for message in messages:
            if gate is not None and not gate.admit(left=remaining):
                break                       # gate.paused_until / gate.reason say until when and why
            if not actually_sent:
                gate.unused()               # a unit admitted for a message that was skipped
    finally:
        if gate is not None:
            gate.release()

Mailing caps come from the mailing (`max_per_hour`, `max_per_day`, counted in its time zone),
connection caps from the Airflow connection's extra (`{"max_per_hour": 100, "max_per_day": 2000}`,
counted in UTC), both per id: two connection ids are two budgets even when they reach one provider.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime, tzinfo
from enum import StrEnum
from typing import Protocol

from sqlalchemy import Engine

from segmail.errors import SegmailError
from segmail.store.models import Channel
from segmail.throttle.budget import BudgetStore, Cap, Grant, Period
from segmail.throttle.window import SendWindow

log = logging.getLogger(__name__)

RESERVE_ROUNDS = 4  # a reservation covers this many pipelined rounds (one mail per connection each)
MAX_CHUNK_SHARE = 10  # ... and at most a tenth of the smallest cap (what a killed batch can strand)
NEVER = datetime.max.replace(tzinfo=UTC)
CAP_KEYS = {"max_per_hour": Period.HOUR, "max_per_day": Period.DAY}


class ConnectionKind(StrEnum):
    """What a connection's budget scope starts with: `smtp:<id>`, `sms:<id>`."""

    SMTP = "smtp"
    SMS = "sms"


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class Limited(Protocol):
    """What a gate needs of a mailing definition (e-mail and SMS mailings alike)."""

    slug: str
    timezone: str
    max_per_hour: int | None
    max_per_day: int | None
    send_window: SendWindow | None

    @property
    def zone(self) -> tzinfo: ...


def mailing_caps(mailing: Limited) -> list[Cap]:
    """A mailing's own caps, counted in its time zone."""
    scope = f"mailing:{mailing.slug}"
    return [
        Cap(scope, period, limit, mailing.zone)
        for period, limit in ((Period.HOUR, mailing.max_per_hour), (Period.DAY, mailing.max_per_day))
        if limit
    ]


def connection_of(mailing: Limited) -> tuple[str | None, ConnectionKind]:
    """The connection a mailing's batches send over, and its kind (an SMS mailing: its gateway)."""
    if getattr(mailing, "channel", Channel.EMAIL) == Channel.SMS:
        return getattr(mailing, "gateway_conn_id", None), ConnectionKind.SMS
    return getattr(mailing, "smtp_conn_id", None), ConnectionKind.SMTP


def resume_in_window(moment: datetime, window: SendWindow | None, tz: tzinfo) -> datetime:
    """When sending may go on once a cap refills at `moment`: then, or when the window next opens."""
    return moment if window is None else window.next_open(moment, tz)


def connection_caps(connection_id: str, *, kind: str = ConnectionKind.SMTP) -> list[Cap]:
    """A connection's caps from its extra (`max_per_hour`, `max_per_day`), counted in UTC."""
    from segmail import settings

    info = settings.connection(connection_id)
    if info is None:
        raise SegmailError(
            f"no connection {connection_id!r}: add it in Airflow or as AIRFLOW_CONN_{connection_id.upper()}"
        )
    extra = info.extra
    caps = []
    for key, period in CAP_KEYS.items():
        value = extra.get(key)
        if value in (None, ""):
            continue
        try:
            limit = int(value)
        except (TypeError, ValueError):
            limit = 0
        if limit < 1 or str(value).strip() != str(limit):
            raise SegmailError(
                f"connection {connection_id}: extra {key} must be a whole number ≥ 1, not {value!r}"
            )
        caps.append(Cap(f"{kind}:{connection_id}", period, limit))
    return caps


def chunk_size(caps: Sequence[Cap], *, connections: int) -> int:
    """Units per reservation: a few pipelined rounds, and a small share of the smallest cap."""
    rounds = RESERVE_ROUNDS * max(1, connections)
    if not caps:
        return rounds
    return max(1, min(rounds, min(c.limit for c in caps) // MAX_CHUNK_SHARE))


def gate_for(
    mailing: Limited,
    *,
    connection_id: str,
    connection_kind: str = ConnectionKind.SMTP,
    connections: int = 1,
    engine: Engine | None = None,
    clock: Clock | None = None,
) -> SendGate | None:
    """The gate for one batch of `mailing` over `connection_id`; None when nothing limits it."""
    caps = mailing_caps(mailing) + connection_caps(connection_id, kind=connection_kind)
    if not caps and mailing.send_window is None:
        return None
    return SendGate(
        caps=caps,
        window=mailing.send_window,
        tz=mailing.zone,
        budget=BudgetStore(engine) if caps else None,
        clock=clock or SystemClock(),
        chunk=chunk_size(caps, connections=connections),
    )


class SendGate:
    """One sender's view of its window and caps: `admit`, `unused`, `release` (see the module)."""

    def __init__(
        self,
        *,
        caps: Sequence[Cap],
        window: SendWindow | None,
        tz: tzinfo,
        budget: BudgetStore | None,
        clock: Clock,
        chunk: int,
    ) -> None:
        self.caps, self.window, self.tz = list(caps), window, tz
        self.budget, self.clock, self.chunk = budget, clock, max(1, chunk)
        self.closes_at: datetime | None = None  # the open window's end, once looked up
        self.grant: Grant | None = None
        self.allowance = 0  # units of `grant` not yet admitted
        self.paused_until: datetime | None = None
        self.reason = ""
        self.reservations = 0

    def admit(self, *, left: int = 1) -> bool:
        """Whether one more mail may go now; `left` (mails still to decide) sizes a reservation."""
        now = self.clock.now()
        if self.closes_at is None or now >= self.closes_at:
            if not self._window_open(now):
                return False
        if self.budget is not None and (self.allowance == 0 or now >= self.grant.valid_until):
            if not self._reserve(now, want=min(self.chunk, max(1, left))):
                return False
        if self.budget is not None:
            self.allowance -= 1
        return True

    def unused(self) -> None:
        """The last admitted unit was not used (the mail was skipped before it went out)."""
        if self.budget is not None:
            self.allowance += 1

    def release(self) -> None:
        """Give back what was reserved and not used; call when the loop stops, in a `finally`."""
        if self.budget is not None and self.grant is not None and self.allowance:
            self.budget.release(self.grant, unused=self.allowance, now=self.clock.now())
        self.grant, self.allowance = None, 0

    # ---------------------------------------------------------------- internals

    def _window_open(self, now: datetime) -> bool:
        if self.window is None:
            self.closes_at = NEVER
            return True
        opens, closes = self.window.open_span(now, self.tz)
        if opens > now:
            return self._pause(opens, f"outside the send window ({self.window.describe()} {self.tz})")
        self.closes_at = closes
        return True

    def _reserve(self, now: datetime, *, want: int) -> bool:
        self.release()  # what is left of an expired grant goes back to rows still current
        started = time.perf_counter()
        self.grant = self.budget.reserve(self.caps, want=want, now=now)
        self.allowance = self.grant.count
        self.reservations += 1
        log.debug(
            "reserved %d of %d in %.1f ms", self.grant.count, want, (time.perf_counter() - started) * 1e3
        )
        if self.grant.count:
            return True
        resume = resume_in_window(self.grant.resume_at or now, self.window, self.tz)
        reached = ", ".join(c.describe() for c in self.grant.exhausted)
        return self._pause(resume, f"send cap reached ({reached})")

    def _pause(self, until: datetime, reason: str) -> bool:
        self.paused_until, self.reason = until, reason
        self.closes_at = None
        return False
