"""send_batch with a gate, over the fake store and transport and an in-memory budget: what is held
back stays pending, skipped mails give their unit back, and a mail costs no reservation of its own."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from segmail.mailings.send import send_batch
from segmail.store.models import DeliveryStatus
from segmail.throttle.budget import Cap, Draw, Grant, Period
from segmail.throttle.gate import SendGate
from segmail.throttle.window import SendWindow
from unit.mailings.fakes import FakeClock, FakeStore, FakeTransport, mailing, pending_mail, variant

VIENNA = ZoneInfo("Europe/Vienna")
MONDAY_10 = datetime(2026, 3, 2, 9, tzinfo=UTC)  # 10:00 in Vienna


class MemoryBudget:
    """BudgetStore's contract in memory: used per (scope, period, start)."""

    def __init__(self) -> None:
        self.used: dict[tuple, int] = {}
        self.reservations = 0

    def reserve(self, caps, *, want, now) -> Grant:
        self.reservations += 1
        draws = tuple(Draw(c, *c.span(now)) for c in caps)
        room = {d: d.cap.limit - self.used.get((d.cap.scope, d.cap.period, d.starts_at), 0) for d in draws}
        count = max(0, min([want, *room.values()]))
        for d in draws:
            key = (d.cap.scope, d.cap.period, d.starts_at)
            self.used[key] = self.used.get(key, 0) + count
        exhausted = [d for d in draws if room[d] <= count] if count < want else []
        return Grant(
            count,
            draws,
            min(d.ends_at for d in draws),
            tuple(d.cap for d in exhausted),
            max((d.ends_at for d in exhausted), default=None),
        )

    def release(self, grant, *, unused, now) -> None:
        for d in grant.draws:
            self.used[(d.cap.scope, d.cap.period, d.starts_at)] -= unused


class WallClock:
    def __init__(self, now: datetime) -> None:
        self.at = now

    def now(self) -> datetime:
        return self.at


def gate(budget, *, limit=None, window=None, now=MONDAY_10, chunk=8) -> SendGate:
    caps = [Cap("mailing:spring", Period.HOUR, limit, VIENNA)] if limit else []
    return SendGate(
        caps=caps,
        window=window,
        tz=VIENNA,
        budget=budget if caps else None,
        clock=WallClock(now),
        chunk=chunk,
    )


def send(store, transport, send_gate):
    return send_batch(
        1,
        mailing=mailing(),
        transport=transport,
        compiled=variant(),
        store=store,
        clock=FakeClock(),
        gate=send_gate,
    )


def test_the_cap_holds_back_the_rest_which_stays_pending():
    budget = MemoryBudget()
    store = FakeStore([pending_mail(i) for i in range(1, 11)])
    result = send(store, FakeTransport(), gate(budget, limit=4))
    assert result.sent == 4 and result.waiting == 6 and result.pending == 0
    assert result.wait_until == datetime(2026, 3, 2, 10, tzinfo=UTC)  # the next hour
    assert sum(s == DeliveryStatus.PENDING for s in store.status.values()) == 6
    assert result.as_dict()["wait_until"] == "2026-03-02T10:00:00+00:00"
    assert sum(budget.used.values()) == 4


def test_a_skipped_mail_gives_its_unit_back_and_the_rest_goes_back_at_the_end():
    budget = MemoryBudget()
    store = FakeStore([pending_mail(i) for i in range(1, 6)])
    store.blocked_now = {2: "opted out during the run"}
    result = send(store, FakeTransport(), gate(budget, limit=100, chunk=8))
    assert (result.sent, result.skipped, result.waiting) == (4, 1, 0)
    assert sum(budget.used.values()) == 4  # reserved 5, one skipped, nothing left over


def test_reservations_come_in_chunks_not_per_mail():
    budget = MemoryBudget()
    store = FakeStore([pending_mail(i) for i in range(1, 51)])
    result = send(store, FakeTransport(), gate(budget, limit=1000, chunk=8))
    assert result.sent == 50
    assert budget.reservations == 7  # ceil(50 / 8)


def test_outside_the_window_no_connection_is_opened():
    store = FakeStore([pending_mail(1), pending_mail(2)])
    transport = FakeTransport()
    sunday = datetime(2026, 3, 1, 9, tzinfo=UTC)
    result = send(store, transport, gate(None, window=SendWindow(days=["mon-fri"]), now=sunday))
    assert transport.opened == 0 and result.waiting == 2
    assert result.wait_until == datetime(2026, 3, 1, 23, tzinfo=UTC)  # Monday 00:00 in Vienna
    assert result.wait_reason == "outside the send window (Mon–Fri 00:00–24:00 Europe/Vienna)"


def test_a_dry_run_sends_nothing_so_neither_window_nor_caps_hold_it():
    budget = MemoryBudget()
    store = FakeStore([pending_mail(1), pending_mail(2)], dry_run=True)
    sunday = datetime(2026, 3, 1, 9, tzinfo=UTC)
    send_gate = gate(budget, limit=1, window=SendWindow(days=["mon-fri"]), now=sunday)
    result = send(store, FakeTransport(), send_gate)
    assert (result.skipped, result.waiting) == (2, 0) and budget.reservations == 0
