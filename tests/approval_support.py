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
    include: Path,
    *,
    approvers: str = "alice",
    timeout_hours: float = 24,
    on_timeout: str = "reject",
    extra: str = "",
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


# ---------------------------------------------------------------- the Celery scale-out test

APPROVAL_DAGS = {"approval_check": 24, "approval_timeout": 0.0003}  # slug -> timeout_hours
LATE_ALERT = "[segmail] Mailing approval_check not finished 1 h after its scheduled time"


def add_approval_mailings(include: Path, *, approver: str) -> None:
    """Two copies of the newsletter that ask `approver`: one waits a day, one times out at once."""
    source = (include / "mailings" / "newsletter.yaml").read_text(encoding="utf-8")
    for slug, hours in APPROVAL_DAGS.items():
        block = APPROVAL_YAML.format(approvers=approver, timeout_hours=hours, on_timeout="reject")
        block += "deadline_hours: 1\n" if slug == "approval_check" else ""
        (include / "mailings" / f"{slug}.yaml").write_text(source + block, encoding="utf-8")


def run_with_answer(  # noqa: ANN001
    api,
    wait: Callable,
    *,
    dag_id: str,
    answer: str | None,
    logical_date: str | None = None,
    first: Callable | None = None,
) -> dict:
    """Trigger `dag_id`; answer its approval through the REST API as a user would (None: leave it to
    the timeout), after `first()`; return the finished DAG run and the request's body."""
    created = api.post(f"/dags/{dag_id}/dagRuns", json={"logical_date": logical_date, "conf": {}})
    assert created.status_code == 200, created.text
    run_id = created.json()["dag_run_id"]
    path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/approve/-1/hitlDetails"
    detail = wait(lambda: (r := api.get(path)).status_code == 200 and r.json(), f"the approval of {run_id}")
    if first is not None:
        first()
    if answer is not None:
        response = api.patch(path, json={"chosen_options": [answer]})
        assert response.status_code == 200, response.text

    def finished() -> dict | None:
        run = api.get(f"/dags/{dag_id}/dagRuns/{run_id}").json()
        return run if run["state"] in ("success", "failed") else None

    run = wait(finished, f"{dag_id} run {run_id}")
    tis = api.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances").json()["task_instances"]
    return {"run": run, "body": detail["body"], "tis": {t["task_id"]: t["state"] for t in tis}}


def check_approvals_on_celery(api, wait: Callable, *, data_engine, sink) -> None:  # noqa: ANN001
    """Approved: the run sends; rejected and timed out: nothing is sent and the run is `rejected`."""
    from sqlalchemy import text

    for dag_id in ("mailing__approval_check", "mailing__approval_timeout"):
        wait(lambda d=dag_id: api.get(f"/dags/{d}").status_code == 200, f"{dag_id} to be parsed")
        assert api.patch(f"/dags/{dag_id}", json={"is_paused": False}).status_code == 200

    def mails() -> int:
        return sum(
            len(m.recipients) for m in sink.messages if not m.parsed()["Subject"].startswith("[segmail]")
        )

    before = mails()
    approved = run_with_answer(api, wait, dag_id="mailing__approval_check", answer="Approve")
    assert approved["run"]["state"] == "success", approved["tis"]
    assert "**20 mails to send**, 1 skipped" in approved["body"], approved["body"]
    assert mails() == before + 20
    rejected = run_with_answer(api, wait, dag_id="mailing__approval_check", answer="Reject")
    timed_out = run_with_answer(api, wait, dag_id="mailing__approval_timeout", answer=None)
    for outcome in (rejected, timed_out):
        assert outcome["run"]["state"] == "success", outcome["tis"]
        assert outcome["tis"]["send_batch"] == "skipped", outcome["tis"]
    assert mails() == before + 20  # nothing more was sent
    with data_engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT r.dag_run_id, r.status, a.decided_by, a.timed_out FROM segmail_mailing_runs r"
                " JOIN segmail_approvals a ON a.mailing_run_id = r.id"
            )
        ).all()
    outcomes = {row.dag_run_id: (row.status, row.decided_by, bool(row.timed_out)) for row in rows}
    assert outcomes[approved["run"]["dag_run_id"]] == ("succeeded", "admin", False)
    assert outcomes[rejected["run"]["dag_run_id"]] == ("rejected", "admin", False)
    assert outcomes[timed_out["run"]["dag_run_id"]] == ("rejected", None, True)
    notices = [m for m in sink.messages if m.parsed()["Subject"].startswith("[segmail] Approval needed")]
    assert len(notices) == 3 and {r for m in notices for r in m.recipients} == {"maria@example.com"}
    check_deadline_alert(api, wait, sink=sink)


def check_deadline_alert(api, wait: Callable, *, sink) -> None:  # noqa: ANN001
    """A run whose scheduled time is 2 h ago, waiting for approval, misses its 1 h deadline: the
    scheduler marks it missed and the triggerer runs segmail's callback, which e-mails the salesperson."""
    from datetime import UTC, datetime, timedelta

    def alerted() -> bool:
        return any(m.parsed()["Subject"] == LATE_ALERT for m in sink.messages)

    two_hours_ago = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
    late = run_with_answer(
        api,
        wait,
        dag_id="mailing__approval_check",
        answer="Reject",
        logical_date=two_hours_ago,
        first=lambda: wait(alerted, "the late-run alert"),
    )
    assert late["run"]["state"] == "success", late["tis"]
    (alert,) = [m for m in sink.messages if m.parsed()["Subject"] == LATE_ALERT]
    assert alert.recipients == ["maria@example.com"]
    assert late["run"]["dag_run_id"] in alert.parsed().get_body().get_content()
