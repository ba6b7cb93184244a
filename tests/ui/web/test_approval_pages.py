"""A run's approval on the monitoring pages: a run waiting for it, an approved one, a rejected one
(SQLite and PostgreSQL)."""

from __future__ import annotations

from segmail.mailings import approval, audience
from segmail.mailings.definition import get_mailing


def freeze(dag_run_id: str) -> int:
    return audience.freeze_audience(get_mailing("newsletter"), dag_run_id=dag_run_id)


def test_waiting_approved_and_rejected_runs_say_so(newsletter_audience, monitoring_client):
    waiting, approved, rejected = (freeze(f"manual__{n}") for n in range(3))
    for run in (waiting, approved, rejected):
        approval.record_request(run, approvers=["alice"])
    approval.decide(
        approved, approval.Answer(approved=True, decided_by="alice", timed_out=False, languages=["en"])
    )
    approval.decide(rejected, approval.Answer(approved=False, decided_by="bob", timed_out=False))

    page = monitoring_client.get(f"/segmail/runs/{waiting}").text
    assert "of alice, waiting in Airflow's Required Actions" in page
    assert '<span class="badge queued">requested</span>' in page
    page = monitoring_client.get(f"/segmail/runs/{approved}").text
    assert "approved by alice" in page and "2 mails left out; languages en" in page
    page = monitoring_client.get(f"/segmail/runs/{rejected}").text
    assert '<span id="run-status"><span class="badge failed">rejected</span>' in page
    assert "<b>Nothing sent.</b> Not approved: rejected by bob." in page
    runs = {r["run"]: r for r in monitoring_client.get("/segmail/api/runs").json()}
    assert runs[rejected]["status"] == "rejected" and runs[rejected]["skipped"] == 7
