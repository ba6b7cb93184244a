"""The shared send budget on SQLite and PostgreSQL: atomic reservations under concurrency, returns,
periods in local time, and a gate that stops at the window's end and at the cap."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from segmail.errors import SegmailError
from segmail.throttle.budget import BudgetStore, Cap, Period
from segmail.throttle.gate import SendGate, chunk_size, connection_caps
from segmail.throttle.window import SendWindow

VIENNA = ZoneInfo("Europe/Vienna")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.at = now

    def now(self) -> datetime:
        return self.at


def office_hours_gate(engine, clock: FakeClock, *, hourly: int, chunk: int) -> SendGate:
    """A Vienna mailing's gate: Mon–Fri 08:00–18:00 and `hourly` mails per local hour."""
    return SendGate(
        caps=[Cap("mailing:news", Period.HOUR, hourly, VIENNA)],
        window=SendWindow(days=["mon-fri"], start="08:00", end="18:00"),
        tz=VIENNA,
        budget=BudgetStore(engine),
        clock=clock,
        chunk=chunk,
    )


def test_concurrent_reservations_never_grant_more_than_the_cap(engine):
    """8 senders reserving small chunks at once from a mailing cap and a connection cap."""
    store = BudgetStore(engine)
    caps = [Cap("mailing:news", Period.HOUR, 100), Cap("smtp:relay", Period.DAY, 1000)]
    now = utc(2026, 3, 2, 10, 15)
    granted: list[int] = []
    start = threading.Barrier(8)

    def sender() -> None:
        start.wait()
        while (grant := store.reserve(caps, want=3, now=now)).count:
            granted.append(grant.count)
        assert grant.resume_at == utc(2026, 3, 2, 11) and grant.exhausted == (caps[0],)

    threads = [threading.Thread(target=sender) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(granted) == 100 and max(granted) == 3
    assert store.usage("mailing:news", period=Period.HOUR, starts_at=utc(2026, 3, 2, 10)) == 100
    assert store.usage("smtp:relay", period=Period.DAY, starts_at=utc(2026, 3, 2)) == 100
    # The next hour has its own budget; the day goes on counting.
    grant = store.reserve(caps, want=5, now=now + timedelta(hours=1))
    assert grant.count == 5
    assert store.usage("smtp:relay", period=Period.DAY, starts_at=utc(2026, 3, 2)) == 105


def test_unused_units_go_back_to_every_cap_they_came_from(engine):
    store = BudgetStore(engine)
    caps = [Cap("mailing:news", Period.HOUR, 10), Cap("mailing:news", Period.DAY, 50)]
    now = utc(2026, 3, 2, 10, 15)
    grant = store.reserve(caps, want=8, now=now)
    store.release(grant, unused=5, now=now)
    assert store.usage("mailing:news", period=Period.HOUR, starts_at=utc(2026, 3, 2, 10)) == 3
    assert store.usage("mailing:news", period=Period.DAY, starts_at=utc(2026, 3, 2)) == 3
    assert store.reserve(caps, want=20, now=now).count == 7  # the hour's remainder, not the day's


def test_periods_long_past_are_deleted_when_a_new_period_starts(engine):
    caps = [Cap("mailing:news", Period.DAY, 50)]
    old, recent, today = utc(2026, 1, 20, 9), utc(2026, 2, 20, 9), utc(2026, 3, 2, 10)
    for moment in (old, recent):
        BudgetStore(engine).reserve(caps, want=4, now=moment)
    assert BudgetStore(engine).reserve(caps, want=1, now=today).count == 1
    store = BudgetStore(engine)
    assert store.usage("mailing:news", period=Period.DAY, starts_at=utc(2026, 1, 20)) == 0  # 41 days
    assert store.usage("mailing:news", period=Period.DAY, starts_at=utc(2026, 2, 20)) == 4  # 10 days
    assert store.usage("mailing:news", period=Period.DAY, starts_at=utc(2026, 3, 2)) == 1


def test_a_mailing_day_is_its_local_day():
    day = Cap("mailing:news", Period.DAY, 10, VIENNA)
    assert day.span(utc(2026, 3, 2, 23, 30)) == (utc(2026, 3, 2, 23), utc(2026, 3, 3, 23))  # 00:30 Tuesday
    assert day.span(utc(2026, 3, 29, 12)) == (utc(2026, 3, 28, 23), utc(2026, 3, 29, 22))  # a 23-hour day
    hour = Cap("smtp:relay", Period.HOUR, 10)
    assert hour.span(utc(2026, 3, 2, 10, 59, 59)) == (utc(2026, 3, 2, 10), utc(2026, 3, 2, 11))


def test_a_gate_stops_when_the_window_closes_and_gives_back_what_it_held(engine):
    clock = FakeClock(utc(2026, 3, 2, 16, 58))  # Monday 17:58 in Vienna
    gate = office_hours_gate(engine, clock, hourly=100, chunk=10)
    assert gate.admit(left=50) and gate.admit(left=49)
    clock.at = utc(2026, 3, 2, 17)  # 18:00: the window closes between two mails
    assert not gate.admit(left=48)
    assert gate.paused_until == utc(2026, 3, 3, 7)  # Tuesday 08:00 in Vienna
    assert gate.reason == "outside the send window (Mon–Fri 08:00–18:00 Europe/Vienna)"
    gate.release()
    assert BudgetStore(engine).usage("mailing:news", period=Period.HOUR, starts_at=utc(2026, 3, 2, 16)) == 2


def test_a_gate_at_the_cap_waits_for_the_next_period_inside_the_window(engine):
    clock = FakeClock(utc(2026, 3, 6, 16, 30))  # Friday 17:30 in Vienna
    gate = office_hours_gate(engine, clock, hourly=2, chunk=5)
    assert gate.admit() and gate.admit()
    assert not gate.admit()
    # The hour refills at 18:00, when the window is closed: on Monday at 08:00.
    assert gate.paused_until == utc(2026, 3, 9, 7)
    assert gate.reason == "send cap reached (2 per hour for mailing:news)"


def test_chunks_are_a_few_rounds_and_a_tenth_of_the_smallest_cap():
    assert chunk_size([], connections=2) == 8
    assert chunk_size([Cap("m", Period.HOUR, 100)], connections=4) == 10
    assert chunk_size([Cap("m", Period.HOUR, 5)], connections=4) == 1
    assert chunk_size([Cap("m", Period.DAY, 100_000)], connections=2) == 8


def test_connection_caps_come_from_the_connections_extra(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_RELAY", "smtp://relay.example:587?max_per_hour=100&max_per_day=2000")
    assert connection_caps("relay") == [
        Cap("smtp:relay", Period.HOUR, 100),
        Cap("smtp:relay", Period.DAY, 2000),
    ]
    assert connection_caps("relay", kind="sms")[0].scope == "sms:relay"
    monkeypatch.setenv("AIRFLOW_CONN_PLAIN", "smtp://relay.example:587")
    assert connection_caps("plain") == []
    monkeypatch.setenv("AIRFLOW_CONN_BAD", "smtp://relay.example:587?max_per_hour=lots")
    with pytest.raises(SegmailError, match="connection bad: extra max_per_hour must be a whole number"):
        connection_caps("bad")


@pytest.mark.postgres
def test_a_new_period_never_deadlocks_with_a_reservation_holding_its_rows(pg_engine, monkeypatch):
    """A reservation that finds one row of its caps missing, while another sender creates that row
    and locks both in the fixed order: rows made inside the locking transaction would be locked out
    of order there, and PostgreSQL would abort one of the two as a deadlock."""
    from sqlalchemy import text

    day = Cap(f"mailing:dl-{uuid.uuid4().hex[:8]}", Period.DAY, 100)
    hour = Cap(f"smtp:dl-{uuid.uuid4().hex[:8]}", Period.HOUR, 100)
    now = utc(2026, 3, 2, 10, 15)
    store = BudgetStore(pg_engine)
    store.reserve([hour], want=1, now=now)  # the connection's hour row exists, the mailing's day not
    first_look, other_waits = threading.Event(), threading.Event()
    select = BudgetStore._select

    def paused_select(self, conn, draws, **kwargs):
        found = select(self, conn, draws, **kwargs)
        if not first_look.is_set():
            first_look.set()
            other_waits.wait(5)
        return found

    errors: list[Exception] = []

    def other_sender() -> None:  # creates the day row, then locks day and hour, in key order
        first_look.wait(5)
        BudgetStore(pg_engine).reserve([day], want=1, now=now)
        try:
            with pg_engine.begin() as conn:
                lock = "SELECT used FROM segmail_send_budgets WHERE scope = :s FOR UPDATE"
                conn.execute(text(lock), {"s": day.scope})
                threading.Timer(0.5, other_waits.set).start()
                conn.execute(text(lock), {"s": hour.scope})
        except Exception as exc:  # PostgreSQL's deadlock detector picked this side
            errors.append(exc)

    monkeypatch.setattr(BudgetStore, "_select", paused_select)
    other = threading.Thread(target=other_sender)
    other.start()
    try:
        grant = BudgetStore(pg_engine).reserve([day, hour], want=3, now=now)
    finally:
        other_waits.set()
        other.join()
    assert errors == [] and grant.count == 3
    assert store.usage(day.scope, period=Period.DAY, starts_at=utc(2026, 3, 2)) == 4
