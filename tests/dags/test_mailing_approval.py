"""A mailing with `approval: {required: true}` under dag.test(): approved, narrowed, rejected and timed
out, answered from a thread the way Airflow's REST API and scheduler answer (tests/approval_support.py);
and the deadline alert the DAG carries."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from approval_support import in_background, respond, time_out, with_approval
from sqlalchemy import text
from tests_support import copy_include, get_dag, states

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(180)  # a lost answer would leave dag.test() waiting for ever
DAG_ID = "mailing__newsletter"
SENDABLE = ["anna@example.com", "bob@example.com", "chloe@example.ca", "giulia@example.it"]


@pytest.fixture
def smtp_pool(airflow_home):
    from airflow.models.pool import Pool

    Pool.create_or_update_pool(
        "smtp", slots=4, description="segmail SMTP connections", include_deferred=False
    )


@pytest.fixture
def include(tmp_path, monkeypatch):
    """A copy of include/ that the DAG files read (SEGMAIL_INCLUDE_DIR)."""
    return copy_include(tmp_path, monkeypatch)


def sent_to(sink) -> list[str]:  # noqa: ANN001
    """Recipients of the newsletter's mails (not of segmail's own notices)."""
    return sorted(
        r for m in sink.messages for r in m.recipients if not m.parsed()["Subject"].startswith("[segmail]")
    )


def run_row(engine) -> dict:  # noqa: ANN001
    with engine.connect() as conn:
        run = conn.execute(text("SELECT id, status, totals FROM segmail_mailing_runs")).one()
        approval = conn.execute(
            text("SELECT * FROM segmail_approvals WHERE mailing_run_id = :r"), {"r": run.id}
        ).one()
        reasons = dict(
            conn.execute(
                text(
                    "SELECT reason, COUNT(*) FROM segmail_deliveries WHERE status = 'skipped' GROUP BY reason"
                )
            ).all()
        )
    return {
        "status": run.status,
        "totals": json.loads(run.totals or "{}"),
        "approval": approval._mapping,
        "skips": reasons,
    }


@pytest.mark.airflow
def test_an_approved_run_sends_and_the_request_is_mailed_with_the_counts(
    newsletter_audience, smtp_sink, smtp_pool, include
):
    with_approval(include, approvers="alice")
    dag = get_dag(DAG_ID)
    answering = in_background(lambda: respond(DAG_ID, chosen="Approve", user="alice"))
    run = dag.test()
    answering.join()
    assert run.state == "success", states(run)
    assert states(run)["approve"] == "success"
    assert sent_to(smtp_sink) == SENDABLE
    row = run_row(newsletter_audience)
    assert row["status"] == "succeeded"
    assert (row["approval"]["status"], row["approval"]["decided_by"]) == ("approved", "alice")
    # The request went to the segment's salesperson (no `notify` in the file) with the counts.
    (notice,) = [m for m in smtp_sink.messages if "Approval needed" in m.parsed()["Subject"]]
    assert notice.recipients == ["maria.berger@example.com"]
    html = notice.parsed().get_body(("html",)).get_content()
    assert "<table>" in html and "<strong>4 mails to send</strong>" in html
    assert "Answer in Airflow under Required Actions" in html  # no [api] base_url here to link with
    from airflow.utils.session import create_session

    with create_session() as session:
        body = _latest_body(session)
    assert "**4 mails to send**, 3 skipped" in body
    assert "| de | 1 |" in body and "| en | 2 |" in body and "| fr | 1 |" in body
    assert "1 × opted out" in body and "1 × no e-mail address" in body and "1 × duplicate address" in body
    assert "No test mail" in body
    assert f"/segmail/mailings/newsletter/preview?run={row['approval']['mailing_run_id']}" in body


def _latest_body(session) -> str:  # noqa: ANN001
    from airflow.models.hitl import HITLDetail
    from sqlalchemy import select

    return session.scalars(select(HITLDetail.body).order_by(HITLDetail.created_at.desc())).first()


@pytest.mark.airflow
def test_the_approver_narrows_languages_and_caps_the_run(newsletter_audience, smtp_sink, smtp_pool, include):
    with_approval(include)
    dag = get_dag(DAG_ID)
    answer = {"languages": ["en", "fr"], "max_recipients": 2}
    answering = in_background(lambda: respond(DAG_ID, chosen="Approve", params_input=answer))
    run = dag.test()
    answering.join()
    assert run.state == "success", states(run)
    assert sent_to(smtp_sink) == [
        "chloe@example.ca",
        "giulia@example.it",
    ]  # en and fr, the first two contacts
    row = run_row(newsletter_audience)
    assert row["skips"]["left out at approval: language not selected by alice"] == 1
    assert row["skips"]["left out at approval: over the recipient cap of 2"] == 1
    assert json.loads(row["approval"]["changes"]) == {
        "languages": ["en", "fr"],
        "max_recipients": 2,
        "left_out": 2,
    }


@pytest.mark.airflow
def test_an_answer_that_sets_only_the_cap_keeps_every_language(
    newsletter_audience, smtp_sink, smtp_pool, include
):
    """A REST client may send one form field: the others keep their defaults (Airflow's own check
    would fail the task after the answer)."""
    with_approval(include)
    dag = get_dag(DAG_ID)
    answering = in_background(lambda: respond(DAG_ID, chosen="Approve", params_input={"max_recipients": 3}))
    run = dag.test()
    answering.join()
    assert run.state == "success", states(run)
    sent = sent_to(smtp_sink)
    assert len(sent) == 3 and set(sent) < set(SENDABLE)  # the first three in contact order
    row = run_row(newsletter_audience)
    assert row["skips"]["left out at approval: over the recipient cap of 3"] == 1
    assert not any("language not selected" in reason for reason in row["skips"])


@pytest.mark.airflow
def test_a_rejected_run_sends_nothing_and_is_marked_rejected(
    newsletter_audience, smtp_sink, smtp_pool, include
):
    with_approval(include)
    dag = get_dag(DAG_ID)
    answering = in_background(lambda: respond(DAG_ID, chosen="Reject", user="bob"))
    run = dag.test()
    answering.join()
    assert run.state == "success", states(run)
    assert states(run) == {
        "freeze_audience": "success",
        "approve": "success",
        "plan_batches": "skipped",
        "send_batch": "skipped",
        "summarize": "success",
    }
    assert sent_to(smtp_sink) == []
    row = run_row(newsletter_audience)
    assert row["status"] == "rejected"
    assert (row["approval"]["status"], row["approval"]["decided_by"]) == ("rejected", "bob")
    assert row["skips"]["not sent: run rejected by bob"] == 4
    assert row["totals"]["sent"] == 0 and row["totals"]["pending"] == 0


@pytest.mark.airflow
def test_a_timed_out_run_sends_nothing_and_is_marked_rejected(
    newsletter_audience, smtp_sink, smtp_pool, include
):
    with_approval(include, timeout_hours=0.0003)  # about a second
    dag = get_dag(DAG_ID)
    sweeping = in_background(lambda: time_out(DAG_ID))
    run = dag.test()
    sweeping.join()
    assert run.state == "success", states(run)
    assert sent_to(smtp_sink) == []
    row = run_row(newsletter_audience)
    assert row["status"] == "rejected"
    assert row["approval"]["decided_by"] is None and row["approval"]["timed_out"]
    assert row["approval"]["reason"] == "no answer within 0.0003 h: rejected by the timeout rule"


def test_the_dag_carries_the_deadline_and_its_callback_mails_the_salesperson(
    newsletter_audience, smtp_sink, include
):
    """Airflow keeps the deadline with each run and, on a miss, runs the callback in the triggerer
    through CallbackTrigger with a small context: that path, with the context handle_miss builds."""
    import asyncio
    from datetime import timedelta

    from airflow.models.callback import CallbackState
    from airflow.sdk.definitions.deadline import DagRunLogicalDateDeadline
    from airflow.triggers.callback import CallbackTrigger
    from segmail.orchestration.mailing_dag import build_mailing_dags

    path = include / "mailings" / "newsletter.yaml"
    path.write_text(path.read_text(encoding="utf-8") + "deadline_hours: 3\n", encoding="utf-8")
    (alert,) = build_mailing_dags()[DAG_ID].deadline
    assert isinstance(alert.reference, DagRunLogicalDateDeadline)
    assert alert.interval == timedelta(hours=3)
    assert alert.callback.path == "segmail.orchestration.deadline.alert_late_run"
    context = {
        "dag_run": {
            "dag_id": DAG_ID,
            "dag_run_id": "scheduled__2026-03-01T07:00:00+00:00",
            "state": "running",
            "logical_date": "2026-03-01T07:00:00Z",
        },
        "deadline": {"id": "d1", "deadline_time": "2026-03-01T10:00:00Z"},
    }
    trigger = CallbackTrigger(alert.callback.path, {**alert.callback.kwargs, "context": context})

    async def events() -> list:
        return [event.payload async for event in trigger.run()]

    *_, last = asyncio.run(events())
    assert last["state"] == CallbackState.SUCCESS, last
    (mail,) = smtp_sink.messages
    assert mail.recipients == ["maria.berger@example.com"]
    assert (
        mail.parsed()["Subject"] == "[segmail] Mailing newsletter not finished 3 h after its scheduled time"
    )
    assert "scheduled__2026-03-01T07:00:00+00:00" in mail.parsed().get_body().get_content()


def test_without_deadline_hours_the_dag_has_no_deadline(include):
    from segmail.orchestration.mailing_dag import build_mailing_dags

    assert not build_mailing_dags()[DAG_ID].deadline
