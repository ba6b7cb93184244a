"""Answering a mailing run's approval (Airflow's Required Actions) while `dag.test()` waits for it.

`dag.test()` leaves a human-in-the-loop task parked in `awaiting_input` until something outside
resumes it. These helpers do, from a thread, what Airflow itself does: `respond` what the REST API's
PATCH .../hitlDetails does for a user's answer, `time_out` what the scheduler's timeout sweep does.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path

APPROVAL_YAML = """
approval:
  required: true
  approvers: [{approvers}]
  timeout_hours: {timeout_hours}
  on_timeout: {on_timeout}
"""


def with_approval(
    include: Path, *, approvers: str = "alice", timeout_hours: float = 24, on_timeout: str = "reject", extra: str = ""
) -> None:
    """Switch the newsletter of an include/ copy to "dialog on"."""
    path = include / "mailings" / "newsletter.yaml"
    text = APPROVAL_YAML.format(approvers=approvers, timeout_hours=timeout_hours, on_timeout=on_timeout)
    path.write_text(path.read_text(encoding="utf-8") + text + extra, encoding="utf-8")


def _awaiting(session, dag_id: str):  # noqa: ANN001, ANN202
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.state import TaskInstanceState
    from sqlalchemy import select
    from sqlalchemy.orm import joinedload

    return session.scalar(
        select(TaskInstance)
        .where(
            TaskInstance.dag_id == dag_id,
            TaskInstance.task_id == "approve",
            TaskInstance.state == TaskInstanceState.AWAITING_INPUT,
        )
        .options(joinedload(TaskInstance.hitl_detail))
    )


def respond(dag_id: str, *, chosen: str, user: str = "alice", params_input: dict | None = None) -> bool:
    """Answer the parked approval as PATCH .../hitlDetails does; False while nothing is parked."""
    from airflow._shared.timezones import timezone
    from airflow.models.trigger import handle_event_submit
    from airflow.triggers.base import TriggerEvent
    from airflow.utils.session import create_session

    with create_session() as session:
        ti = _awaiting(session, dag_id)
        if ti is None or ti.hitl_detail is None:
            return False
        detail = ti.hitl_detail
        detail.responded_by = {"id": user, "name": user}
        detail.responded_at = timezone.utcnow()
        detail.chosen_options = [chosen]
        detail.params_input = params_input or {}
        session.add(detail)
        handle_event_submit(TriggerEvent(detail.as_resume_event_payload()), task_instance=ti, session=session)
    return True


def time_out(dag_id: str) -> bool:
    """Run the scheduler's timeout sweep once the parked approval is due; False until it resolved one."""
    from airflow.jobs.job import Job
    from airflow.jobs.scheduler_job_runner import SchedulerJobRunner
    from airflow.utils.session import create_session

    with create_session() as session:
        ti = _awaiting(session, dag_id)
        if ti is None:
            return False
    SchedulerJobRunner(job=Job()).check_awaiting_input_timeouts()
    with create_session() as session:
        return _awaiting(session, dag_id) is None


def in_background(answer: Callable[[], bool], *, timeout: float = 60) -> threading.Thread:
    """Call `answer` every 0.3 s until it returns True (or `timeout` passes), in a daemon thread."""

    def loop() -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if answer():
                    return
            except Exception:  # shown in the test's output; the run then waits for nothing
                traceback.print_exc()
                return
            time.sleep(0.3)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return thread
