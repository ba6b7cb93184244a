"""Send caps and send windows while really sending: four batches at once through a real SMTP server
share one hourly budget in the database (SQLite and PostgreSQL), on a simulated clock."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from segmail.mailings import send
from segmail.mailings.audience import freeze_audience
from segmail.mailings.definition import get_mailing
from segmail.mailings.deliveries import plan_batches
from segmail.mailings.transport import SmtpHookTransport
from segmail.throttle.budget import BudgetStore, Period
from segmail.throttle.gate import gate_for
from segmail.throttle.window import SendWindow
from sqlalchemy import text

CONTACTS = 160


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.at = now

    def now(self) -> datetime:
        return self.at


@pytest.fixture
def big_audience(engine, tmp_path):
    """160 English-speaking contacts in the Newsletter segment."""
    from segmail.contacts import segments
    from segmail.imports.pipeline import import_file

    segments.create_segment(name="Newsletter", engine=engine)
    rows = ["External ID,Country Code,First Name,Last Name,Email,Language,Segments"]
    rows += [f"C{i:03},US,Pat,Number{i},pat{i:03}@example.com,en,Newsletter" for i in range(CONTACTS)]
    path = tmp_path / "big.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    assert import_file(path, engine=engine).created == CONTACTS
    return engine


def send_concurrently(engine, mailing, batches, clock) -> list[send.BatchResult]:
    """Every batch in its own thread, all at once, each with its own gate on the shared budget."""
    results: list[send.BatchResult] = []
    start = threading.Barrier(len(batches))

    def run(batch_id: int) -> None:
        gate = gate_for(
            mailing,
            connection_id=mailing.smtp_conn_id,
            connections=mailing.smtp_connections,
            engine=engine,
            clock=clock,
        )
        transport = SmtpHookTransport(mailing.smtp_conn_id, connections=mailing.smtp_connections)
        start.wait()
        results.append(
            send.send_batch(batch_id, mailing=mailing, transport=transport, engine=engine, gate=gate)
        )

    threads = [threading.Thread(target=run, args=(b["batch_id"],)) for b in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == len(batches), "a sender thread failed"
    return results


def statuses(engine, run_id: int) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT status, COUNT(*) FROM segmail_deliveries WHERE mailing_run_id = :r GROUP BY status"),
            {"r": run_id},
        ).all()
    return dict(rows)


def test_four_concurrent_batches_send_exactly_the_hourly_cap_and_the_rest_waits(big_audience, smtp_sink):
    engine = big_audience
    mailing = get_mailing("newsletter").model_copy(update={"max_per_hour": 100, "timezone": "Europe/Vienna"})
    run_id = freeze_audience(mailing, dag_run_id="capped", engine=engine)
    batches = plan_batches(run_id, batch_size=40, engine=engine)
    assert [b["size"] for b in batches] == [40, 40, 40, 40]
    clock = FakeClock(datetime(2026, 3, 2, 10, 15, tzinfo=UTC))

    first = send_concurrently(engine, mailing, batches, clock)
    assert sum(r.sent for r in first) == 100
    assert len(smtp_sink.messages) == 100  # what the server received, not only what was recorded
    assert sum(r.waiting for r in first) == 60 and all(r.pending == 0 for r in first)
    waiting = [r for r in first if r.waiting]
    assert waiting and {r.wait_until for r in waiting} == {datetime(2026, 3, 2, 11, tzinfo=UTC)}
    assert {r.wait_reason for r in waiting} == {"send cap reached (100 per hour for mailing:newsletter)"}
    assert statuses(engine, run_id) == {"sent": 100, "pending": 60}
    budget = BudgetStore(engine)
    assert (
        budget.usage("mailing:newsletter", period=Period.HOUR, starts_at=datetime(2026, 3, 2, 10, tzinfo=UTC))
        == 100
    )

    clock.at = datetime(2026, 3, 2, 11, 0, tzinfo=UTC)  # the next hour: the waiting batches resume
    waiting_ids = {r.batch_id for r in waiting}
    second = send_concurrently(engine, mailing, [b for b in batches if b["batch_id"] in waiting_ids], clock)
    assert sum(r.sent for r in second) == 60 and not any(r.waiting for r in second)
    assert statuses(engine, run_id) == {"sent": 160}
    recipients = [rcpt for message in smtp_sink.messages for rcpt in message.recipients]
    assert len(recipients) == len(set(recipients)) == CONTACTS  # every contact once, none twice
    assert (
        budget.usage("mailing:newsletter", period=Period.HOUR, starts_at=datetime(2026, 3, 2, 11, tzinfo=UTC))
        == 60
    )


def test_a_connection_cap_holds_across_mailings_runs(big_audience, smtp_sink, monkeypatch):
    """The SMTP connection's extra `max_per_hour` is one budget for every mailing that uses it."""
    engine = big_audience
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", smtp_sink.connection_uri + "&max_per_hour=30")
    mailing = get_mailing("newsletter")
    clock = FakeClock(datetime(2026, 3, 2, 10, 15, tzinfo=UTC))
    sent = 0
    for dag_run_id in ("run-a", "run-b"):
        run_id = freeze_audience(mailing, dag_run_id=dag_run_id, engine=engine)
        results = send_concurrently(
            engine, mailing, plan_batches(run_id, batch_size=80, engine=engine), clock
        )
        sent += sum(r.sent for r in results)
        assert all(r.wait_reason == "send cap reached (30 per hour for smtp:smtp_default)" for r in results)
    assert sent == len(smtp_sink.messages) == 30


def test_a_batch_stops_at_a_mail_boundary_when_the_window_closes(big_audience, smtp_sink):
    """The clock passes 18:00 in Vienna after the 25th mail was taken: the mails in flight finish
    and are recorded, no further mail is taken, and the rest waits for the next morning."""
    engine = big_audience
    mailing = get_mailing("newsletter").model_copy(
        update={
            "timezone": "Europe/Vienna",
            "send_window": SendWindow(days=["mon-fri"], start="08:00", end="18:00"),
            "smtp_connections": 2,
        }
    )
    run_id = freeze_audience(mailing, dag_run_id="evening", engine=engine)
    (batch,) = plan_batches(run_id, batch_size=500, engine=engine)

    class ClosingClock(FakeClock):
        calls = 0

        def now(self) -> datetime:
            self.calls += 1
            if self.calls > 26:  # one look before connecting, then one per mail taken
                self.at = datetime(2026, 3, 2, 17, 0, tzinfo=UTC)
            return self.at

    gate = gate_for(
        mailing,
        connection_id="smtp_default",
        engine=engine,
        clock=ClosingClock(datetime(2026, 3, 2, 16, 59, tzinfo=UTC)),
    )
    result = send.send_batch(
        batch["batch_id"],
        mailing=mailing,
        transport=SmtpHookTransport("smtp_default", connections=2),
        engine=engine,
        gate=gate,
    )
    assert result.sent == 25 == len(smtp_sink.messages)
    assert result.waiting == CONTACTS - 25 and result.pending == 0
    assert result.wait_until == datetime(2026, 3, 3, 7, tzinfo=UTC)  # Tuesday 08:00 in Vienna
    assert statuses(engine, run_id) == {"sent": 25, "pending": CONTACTS - 25}
