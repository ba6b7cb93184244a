"""Approving a frozen run (segmail.mailings.approval) on SQLite and PostgreSQL: the request's counts,
the answer written once, narrowing and rejecting by skipping with a reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from segmail.mailings import approval, audience
from segmail.mailings.definition import get_mailing
from segmail.store import read
from sqlalchemy import text


@pytest.fixture
def frozen(newsletter_audience) -> int:
    return audience.freeze_audience(get_mailing("newsletter"), dag_run_id="manual__1")


def skips(engine, run_id: int) -> dict[str, int]:  # noqa: ANN001
    with engine.connect() as conn:
        return dict(
            conn.execute(
                text(
                    "SELECT reason, COUNT(*) FROM segmail_deliveries WHERE mailing_run_id = :r AND status = 'skipped'"
                    " GROUP BY reason"
                ),
                {"r": run_id},
            ).all()
        )


def test_the_request_shows_counts_subjects_test_mails_and_the_preview(newsletter_audience, frozen):
    from segmail.store.models import SentTestMail

    now = datetime.now(UTC)
    with newsletter_audience.begin() as conn:
        for days, recipient in ((1, "maria.berger@example.com"), (30, "old@example.com")):
            conn.execute(
                SentTestMail.__table__.insert().values(
                    mailing="newsletter",
                    language="de",
                    recipient=recipient,
                    subject="[TEST] x",
                    status="sent",
                    sent_at=now - timedelta(days=days),
                )
            )
    mailing = get_mailing("newsletter")
    facts = approval.run_facts(mailing, frozen, preview_url="/segmail/mailings/newsletter/preview?run=1")
    assert facts.to_send == {"de": 1, "en": 2, "fr": 1}
    body = approval.request_body(mailing, facts)
    assert "**4 mails to send**, 3 skipped" in body
    assert "| en | 2 | Alex, your newsletter: spring check & new models |" in body  # rendered for the sample
    assert "1 × opted out" in body
    assert "Test mails in the last 7 days: 1, to maria.berger@example.com" in body  # not the 30-day-old one
    assert "[Preview the mails of this run](/segmail/mailings/newsletter/preview?run=1)" in body


def test_approving_narrows_by_language_and_cap_and_is_written_once(newsletter_audience, frozen):
    approval.record_request(frozen, approvers=["alice"])
    answer = approval.Answer(
        approved=True, decided_by="alice", timed_out=False, languages=["en"], max_recipients=1
    )
    decision = approval.decide(frozen, answer)
    assert decision == {
        "mailing_run_id": frozen,
        "approved": True,
        "decided_by": "alice",
        "timed_out": False,
        "reason": "approved by alice",
        "left_out": 3,
    }
    reasons = skips(newsletter_audience, frozen)
    assert reasons["left out at approval: language not selected by alice"] == 2  # de and fr
    assert reasons["left out at approval: over the recipient cap of 1"] == 1  # the second en
    # A second answer (a retried task) changes nothing and returns the first decision.
    again = approval.decide(frozen, approval.Answer(approved=False, decided_by="bob", timed_out=False))
    assert again == decision
    stored = read.run_approval(newsletter_audience, frozen)
    assert stored["status"] == "approved" and stored["approvers"] == ["alice"]
    assert stored["changes"] == {"languages": ["en"], "max_recipients": 1, "left_out": 3}
    assert read.mailing_run(newsletter_audience, frozen)["status"] == "frozen"


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        pytest.param(
            approval.Answer(approved=False, decided_by="bob", timed_out=False),
            "rejected by bob",
            id="rejected",
        ),
        pytest.param(
            approval.Answer(approved=False, decided_by=None, timed_out=True, timeout_hours=24),
            "no answer within 24 h: rejected by the timeout rule",
            id="timed-out",
        ),
    ],
)
def test_a_rejection_skips_every_pending_mail_and_marks_the_run(newsletter_audience, frozen, answer, reason):
    from segmail.mailings import deliveries, summary

    decision = approval.decide(frozen, answer)
    assert decision["reason"] == reason and decision["left_out"] == 4 and not decision["approved"]
    assert skips(newsletter_audience, frozen)[f"not sent: run {reason}"] == 4
    assert deliveries.plan_batches(frozen, batch_size=500) == []  # nothing left to send
    totals = summary.summarize_run(frozen, mailing=get_mailing("newsletter"))
    assert totals["pending"] == 0 and totals["sent"] == 0
    run = read.mailing_run(newsletter_audience, frozen)
    assert run["status"] == "rejected"  # the summary keeps it
    assert run["approval"]["reason"] == reason and run["approval"]["timed_out"] is answer.timed_out


def test_a_timeout_that_approves_keeps_the_run_as_frozen(newsletter_audience, frozen):
    """`on_timeout: approve`: Airflow answers with the form's defaults, the run's own languages."""
    answer = approval.Answer(
        approved=True, decided_by=None, timed_out=True, languages=["de", "en", "fr"], timeout_hours=2
    )
    decision = approval.decide(frozen, answer)
    assert decision["reason"] == "no answer within 2 h: approved by the timeout rule"
    assert decision["left_out"] == 0
    assert read.run_totals(frozen, engine=newsletter_audience)["pending"] == 4
