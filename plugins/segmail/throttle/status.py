"""What the monitoring pages say about a mailing's local time, send window and caps.

Schedules and windows are the mailing's wall-clock times, so they are shown in its time zone with
the zone named ("Mon 2026-03-09 08:00 Europe/Vienna"), unlike stored times, which the pages show in
the viewer's time zone.

Why a run's mails wait is derived, not stored: a deferred batch leaves its mails `pending`, and the
window and the budget rows say whether the gate would hold them now and until when — the same rule
the gate applies (`segmail.throttle.gate`), so the page and the batches agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from enum import StrEnum

from sqlalchemy import Engine

from segmail.throttle.budget import BudgetStore, Cap
from segmail.throttle.gate import Limited, mailing_caps, resume_in_window


class WaitReason(StrEnum):
    WINDOW_CLOSED = "send window closed"
    CAP_REACHED = "cap reached"


def local(moment: datetime, tz: tzinfo, name: str) -> str:
    return f"{moment.astimezone(tz):%a %Y-%m-%d %H:%M} {name}"


@dataclass(frozen=True)
class CapUse:
    """One cap's use in the period holding the moment looked at."""

    cap: Cap
    used: int
    ends_at: datetime

    @property
    def reached(self) -> bool:
        return self.used >= self.cap.limit


@dataclass(frozen=True)
class SendingState:
    """A mailing's window and caps at one moment, read once for the facts and the wait line."""

    mailing: Limited
    now: datetime
    window_span: tuple[datetime, datetime] | None  # (opens, closes) in UTC; opens <= now: open
    uses: tuple[CapUse, ...]

    def facts(self) -> list[tuple[str, str]]:
        """(label, text) pairs: time zone, schedule, send window now, each cap's use."""
        timezone, schedule = self.mailing.timezone, getattr(self.mailing, "schedule", None)
        facts = [("Time zone", timezone)]
        if schedule and schedule != "after_import":
            facts.append(("Schedule", f"{schedule} (local time in {timezone})"))
        if self.window_span is not None:
            facts.append(("Send window", self._window_text()))
        facts += [("Send cap", self._cap_text(use)) for use in self.uses]
        return facts

    def wait(self, pending: int) -> str | None:
        """'N mails wait until <local time, zone> (why)' when the gate would hold `pending` mails now."""
        held = self._held()
        if pending <= 0 or held is None:
            return None
        until, reason = held
        mails = "1 mail waits" if pending == 1 else f"{pending} mails wait"
        return f"{mails} until {local(until, self.mailing.zone, self.mailing.timezone)} ({reason})"

    def _held(self) -> tuple[datetime, WaitReason] | None:
        """Until when and why the gate would hold a mail now (None: it would let it go)."""
        window, tz = self.mailing.send_window, self.mailing.zone
        if self.window_span is not None and self.window_span[0] > self.now:
            return self.window_span[0], WaitReason.WINDOW_CLOSED
        reached = [use.ends_at for use in self.uses if use.reached]
        if not reached:
            return None
        return resume_in_window(max(reached), window, tz), WaitReason.CAP_REACHED

    def _window_text(self) -> str:
        window, (opens, closes) = self.mailing.send_window, self.window_span
        tz, timezone = self.mailing.zone, self.mailing.timezone
        state = (
            f"open until {local(closes, tz, timezone)}"
            if opens <= self.now
            else f"closed; opens {local(opens, tz, timezone)}"
        )
        return f"{window.describe()} {timezone} — {state}"

    def _cap_text(self, use: CapUse) -> str:
        cap = use.cap  # a mailing's cap counts in its zone, a connection's in UTC: named as counted
        until = local(use.ends_at, cap.tz, str(cap.tz))
        return f"{use.used} of {cap.limit} per {cap.period} for {cap.scope} (until {until})"


def sending_state(
    mailing: Limited, *, now: datetime | None = None, engine: Engine | None = None
) -> SendingState:
    """The window and each cap's use now: one budget query per cap, none without caps."""
    now = now or datetime.now(UTC)
    window = mailing.send_window
    span = window.open_span(now, mailing.zone) if window is not None else None
    caps = mailing_caps(mailing) + _connection_caps(mailing)
    store = BudgetStore(engine) if caps else None
    uses = tuple(_use(store, cap, now) for cap in caps)
    return SendingState(mailing=mailing, now=now, window_span=span, uses=uses)


def sending_facts(
    mailing: Limited, *, now: datetime | None = None, engine: Engine | None = None
) -> list[tuple[str, str]]:
    """(label, text) pairs: schedule, send window now, and each cap's use in its current period."""
    return sending_state(mailing, now=now, engine=engine).facts()


def _use(store: BudgetStore, cap: Cap, now: datetime) -> CapUse:
    start, end = cap.span(now)
    return CapUse(cap, store.usage(cap.scope, period=cap.period, starts_at=start), end)


def _connection_caps(mailing: Limited) -> list[Cap]:
    """The sending connection's caps, when the pages can read the connection (else none are shown)."""
    from segmail.throttle.gate import connection_caps, connection_of

    conn_id, kind = connection_of(mailing)
    if not conn_id:
        return []
    try:
        return connection_caps(conn_id, kind=kind)
    except Exception:  # the pages must not depend on a connection being readable here
        return []
