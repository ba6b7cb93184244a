"""The batch connection on PostgreSQL: its session settings hold while a batch is sent and are
reset before the connection goes back to the pool, where other code uses it."""

from __future__ import annotations

import pytest
from segmail.mailings.deliveries import DeliveryStore
from sqlalchemy import create_engine

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
