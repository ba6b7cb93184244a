"""The mail_feedback DAG's shape, and what it does without a bounce mailbox (the real mailbox runs
are in tests/integration/feedback/test_bounce_mailbox.py)."""

from __future__ import annotations

import pytest
from tests_support import get_dag, states


def test_schedule_one_run_at_a_time_and_retries(airflow_home):
    dag = get_dag("mail_feedback")
    assert dag.max_active_runs == 1 and not dag.catchup
    assert dag.timetable.expression == "*/15 * * * *"  # SEGMAIL_FEEDBACK_CRON
    read = dag.get_task("read_mailbox")
    assert read.retries == 3 and read.retry_exponential_backoff
    assert dag.get_task("summarize").retries == 0


@pytest.mark.airflow
def test_without_a_bounce_mailbox_the_run_is_skipped_saying_how_to_configure_it(
    engine, airflow_home, monkeypatch
):
    monkeypatch.delenv("AIRFLOW_CONN_SEGMAIL_BOUNCES", raising=False)
    run = get_dag("mail_feedback").test()
    assert states(run) == {"read_mailbox": "skipped", "summarize": "skipped"}
