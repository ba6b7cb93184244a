"""The batch connection on PostgreSQL: its session settings hold while a batch is sent and are
reset before the connection goes back to the pool, where other code uses it; outcomes are
written in place."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from segmail.mailings.audience import freeze_audience
from segmail.mailings.definition import get_mailing
from segmail.mailings.deliveries import DeliveryStore, Outcome, plan_batches
from segmail.store.models import DeliveryStatus
from sqlalchemy import create_engine, text

pytestmark = pytest.mark.postgres
SETTINGS = ("synchronous_commit", "plan_cache_mode")


def settings_of(connection) -> tuple[str, ...]:
    return tuple(connection.execute(f"SHOW {name}").fetchone()[0] for name in SETTINGS)


def test_a_batch_runs_with_generic_plans_and_gives_its_connection_back_as_lent(pg_engine):
    engine = create_engine(pg_engine.url, pool_size=1, max_overflow=0)
    try:
        with engine.connect() as conn:
            defaults = settings_of(conn.connection.driver_connection)
        store = DeliveryStore(engine)
        assert settings_of(store._db.db) == ("off", "force_generic_plan")
        store.close()
        with engine.connect() as conn:  # the pool's only connection: the one the batch used
            assert settings_of(conn.connection.driver_connection) == defaults
    finally:
        engine.dispose()


def _updates(conn) -> tuple[int, int]:
    """(row updates, HOT updates) of segmail_deliveries, as the statistics have them now."""
    conn.rollback()  # a new transaction: statistics are read afresh
    return conn.execute(
        text("SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'segmail_deliveries'")
    ).one()


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_an_outcome_is_written_in_place_without_new_index_entries(newsletter_audience):
    """Migration 0011: no index holds the status, and pages keep room, so outcomes are HOT updates."""
    engine = newsletter_audience
    run_id = freeze_audience(get_mailing("newsletter"), dag_run_id="hot", engine=engine)
    batches = plan_batches(run_id, batch_size=500, engine=engine)
    store = DeliveryStore(engine)
    with engine.connect() as stats:
        before = _updates(stats)
        sent = 0
        for ref in batches:
            _, pending = store.load_batch(ref["batch_id"])
            now = datetime.now(UTC)
            outcomes = [
                Outcome(
                    mail.id,
                    DeliveryStatus.SENT,
                    now,
                    code=250,
                    response="2.0.0 Ok: queued as 4F2A1B3C5D",
                    message_id=f"<{mail.id}.hot@segmail.example>",
                    sent_at=now,
                )
                for mail in pending
            ]
            store.write(outcomes)
            sent += len(outcomes)
        store._db.db.execute("SELECT pg_stat_force_next_flush()")  # flushed when the session idles
        store.close()
        assert sent >= 4
        deadline = time.monotonic() + 10
        while (after := _updates(stats))[0] - before[0] < sent and time.monotonic() < deadline:
            time.sleep(0.1)
    updated, hot = after[0] - before[0], after[1] - before[1]
    assert (updated, hot) == (sent, sent)
