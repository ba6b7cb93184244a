"""A scheduled run that starts too late sends nothing and Airflow shows it green: segmail records it
as a `skipped` run so the pages say why (SQLite and PostgreSQL). Its freeze_audience task is run
here as the DAG runs it, with the DAG run Airflow passes."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from airflow.sdk.exceptions import AirflowSkipException
from segmail.orchestration import skipped_runs, tasks
from sqlalchemy import text

PARAMS = {"dry_run": False, "languages": ["de", "en", "fr"], "max_recipients": 0}
DAG_RUN_ID = "scheduled__2026-02-01T08:00:00+00:00"


def scheduled(hours_ago: float) -> SimpleNamespace:
    """What Airflow passes for a scheduled run due `hours_ago` (at a whole second, as cron times are)."""
    due = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=hours_ago)
    return SimpleNamespace(run_type="scheduled", run_after=due, logical_date=due)


def runs(engine) -> list[tuple]:
    with engine.connect() as conn:
        query = "SELECT r.status, r.options, COUNT(d.id) FROM segmail_mailing_runs r"
        query += (
            " LEFT JOIN segmail_deliveries d ON d.mailing_run_id = r.id GROUP BY r.id, r.status, r.options"
        )
        return [tuple(row) for row in conn.execute(text(query))]


def freeze(dag_run: SimpleNamespace) -> int:
    return tasks.freeze_audience("newsletter", params=PARAMS, run_id=DAG_RUN_ID, dag_run=dag_run)


def test_a_run_too_late_is_recorded_and_shown_with_its_reason(newsletter_audience, monitoring_client):
    with pytest.raises(AirflowSkipException, match="max_lateness_hours=6"):
        freeze(scheduled(hours_ago=30))
    with pytest.raises(AirflowSkipException):
        freeze(scheduled(hours_ago=31))  # a retry refreshes the record, never a second run
    ((status, options, mails),) = runs(newsletter_audience)
    assert (status, mails) == ("skipped", 0)
    assert re.search(r"starting 1 day, 7:00:0\d later \(more than max_lateness_hours=6\)", options)

    (run,) = monitoring_client.get("/segmail/api/runs").json()
    assert run["status"] == "skipped" and run["nothing_sent"].startswith("Skipped as too late: scheduled for")
    page = monitoring_client.get(f"/segmail/runs/{run['run']}").text
    assert "<b>Nothing sent.</b> Skipped as too late" in page


def test_a_cleared_run_no_longer_too_late_freezes_its_audience(newsletter_audience):
    with pytest.raises(AirflowSkipException):
        freeze(scheduled(hours_ago=30))
    freeze(scheduled(hours_ago=1))  # e.g. max_lateness_hours was raised and the task cleared
    ((status, _options, mails),) = runs(newsletter_audience)
    assert (status, mails) == ("frozen", 7)


def test_a_frozen_run_is_never_marked_skipped(newsletter_audience):
    run_id = freeze(scheduled(hours_ago=1))
    skipped_runs.record("newsletter", dag_run_id=DAG_RUN_ID, reason="late")  # a later retry, too late
    skipped_runs.forget("newsletter", dag_run_id=DAG_RUN_ID)
    assert runs(newsletter_audience) == [("frozen", runs(newsletter_audience)[0][1], 7)]
    assert freeze(scheduled(hours_ago=1)) == run_id
