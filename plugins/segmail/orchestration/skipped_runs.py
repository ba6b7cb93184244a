"""Scheduled mailing runs skipped as too late, recorded so that a green DAG run that sent nothing
says so.

A scheduled run that starts more than the mailing's `max_lateness_hours` after its time sends
nothing: its freeze_audience task is skipped and Airflow shows the DAG run as a success. The skip is
recorded as a segmail run with status `skipped`, no deliveries and the reason in its options, so
the monitoring pages, the DAG run's "Mailing run" tab and `segmail status` show why. Invariant: a
`skipped` run never has deliveries; when a cleared task is no longer too late (the mailing's
lateness was raised), `forget` removes the record first and the audience is frozen as usual.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy import Engine, text

from segmail.store.db import default_engine
from segmail.store.models import RunStatus

_EXISTING = text("SELECT id, status FROM segmail_mailing_runs WHERE mailing = :m AND dag_run_id = :d")
_INSERT = text(
    "INSERT INTO segmail_mailing_runs (mailing, dag_run_id, status, dry_run, options, created_at,"
    " finished_at) VALUES (:m, :d, :skipped, :no, :o, :now, :now)"
)
_UPDATE = text("UPDATE segmail_mailing_runs SET options = :o, finished_at = :now WHERE id = :id")
_FORGET = text(
    "DELETE FROM segmail_mailing_runs WHERE mailing = :m AND dag_run_id = :d AND status = :skipped"
    " AND NOT EXISTS (SELECT 1 FROM segmail_deliveries WHERE mailing_run_id = segmail_mailing_runs.id)"
)


def record(
    slug: str, *, dag_run_id: str, reason: str, engine: Engine | None = None, now: datetime | None = None
) -> None:
    """Record (or, on a retried task, refresh) the skip; a run whose audience is frozen is left alone."""
    engine = engine or default_engine()
    now = now or datetime.now(UTC)
    options = json.dumps({"skip_reason": reason})
    with engine.begin() as conn:
        existing = conn.execute(_EXISTING, {"m": slug, "d": dag_run_id}).first()
        if existing is None:
            params = {"m": slug, "d": dag_run_id, "skipped": RunStatus.SKIPPED, "no": False}
            conn.execute(_INSERT, {**params, "o": options, "now": now})
        elif existing.status == RunStatus.SKIPPED:
            conn.execute(_UPDATE, {"id": existing.id, "o": options, "now": now})


def forget(slug: str, *, dag_run_id: str, engine: Engine | None = None) -> None:
    """Drop the skip record of this DAG run, before its audience is frozen after all."""
    with (engine or default_engine()).begin() as conn:
        conn.execute(_FORGET, {"m": slug, "d": dag_run_id, "skipped": RunStatus.SKIPPED})
