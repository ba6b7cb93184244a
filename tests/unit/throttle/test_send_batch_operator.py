"""SendBatchOperator's pause: it defers until the gate's moment and, resumed, reports the whole
batch — the counts of the turns before the pause plus the last turn's (no Airflow run needed)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from airflow.sdk.exceptions import TaskDeferred
from segmail.orchestration import tasks
from segmail.orchestration.operators import SendBatchOperator

MONDAY_8_VIENNA = datetime(2026, 3, 9, 7, tzinfo=UTC)


def test_a_paused_batch_defers_and_its_result_counts_every_turn(monkeypatch):
    turns = iter(
        [
            {
                "batch_id": 7,
                "sent": 100,
                "failed": 1,
                "skipped": 2,
                "pending": 0,
                "last_error": None,
                "waiting": 57,
                "wait_until": MONDAY_8_VIENNA.isoformat(),
                "wait_reason": "send cap reached",
            },
            {"batch_id": 7, "sent": 55, "failed": 0, "skipped": 2, "pending": 0, "last_error": None},
        ]
    )
    monkeypatch.setattr(tasks, "send_batch", lambda slug, batch: next(turns))
    operator = SendBatchOperator(task_id="send_batch", slug="newsletter", batch={"batch_id": 7})
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute({})
    assert deferred.value.trigger.moment == MONDAY_8_VIENNA
    assert deferred.value.method_name == "resume"
    kwargs = deferred.value.kwargs
    assert kwargs == {"earlier": {"sent": 100, "failed": 1, "skipped": 2}}
    result = operator.resume({}, event=MONDAY_8_VIENNA, **kwargs)
    assert result == {"batch_id": 7, "sent": 155, "failed": 1, "skipped": 4, "pending": 0, "last_error": None}
