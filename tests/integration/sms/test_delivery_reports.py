"""A delivery report that overtakes the sending task's commit (Kannel reports within milliseconds):
it waits for that commit, so the row keeps the gateway's answer; if the commit never comes (the
task died after submitting), the report lands on the `pending` row, which is then never sent again."""

from __future__ import annotations

import json
import threading
import time

from segmail.feedback.tokens import TokenPurpose, TokenSigner
from segmail.mailings.summary import refresh_totals
from segmail.sms.reports import ReportOutcome, TotalsRefresher, apply_delivery_report
from sms_support import delivery_rows, sms_run, wait_for
from sqlalchemy import text
from tests_support import TEST_SIGNING_KEY

SIGNER = TokenSigner((TEST_SIGNING_KEY,))


def report(engine, delivery_id: int, *, settle: float):
    token = SIGNER.sign(TokenPurpose.SMS_REPORT, delivery_id)
    return apply_delivery_report(token, 1, signer=SIGNER, engine=engine, settle_seconds=settle)


def test_a_report_waits_for_the_senders_commit_and_the_row_keeps_the_gateways_answer(engine):
    _, (delivery,) = sms_run(engine, ["+436641000031"], status="pending")

    def sender_commits_later() -> None:
        time.sleep(0.3)
        with engine.begin() as conn:
            conn.execute(
                text(
                    "UPDATE segmail_deliveries SET status = 'sent', smtp_code = 202,"
                    " smtp_response = '0: Accepted for delivery' WHERE id = :id AND status = 'pending'"
                ),
                {"id": delivery},
            )

    sender = threading.Thread(target=sender_commits_later)
    started = time.monotonic()
    sender.start()
    result = report(engine, delivery, settle=10)
    sender.join()
    assert result.outcome is ReportOutcome.APPLIED and time.monotonic() - started < 5
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT status, smtp_code, smtp_response FROM segmail_deliveries WHERE id = :id"),
            {"id": delivery},
        ).one()
    assert tuple(row) == ("delivered", 202, "0: Accepted for delivery")


def test_without_the_senders_commit_the_report_lands_on_the_pending_row(engine):
    _, (delivery,) = sms_run(engine, ["+436641000032"], status="pending")
    started = time.monotonic()
    result = report(engine, delivery, settle=0.3)
    assert result.outcome is ReportOutcome.APPLIED and time.monotonic() - started >= 0.3
    assert delivery_rows(engine, [delivery])[delivery] == ("delivered", None, True)
    assert report(engine, delivery, settle=0.3).outcome is ReportOutcome.ALREADY


def stored_totals(engine, run_id: int) -> dict:
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT totals FROM segmail_mailing_runs WHERE id = :r"), {"r": run_id})
        return json.loads(stored.scalar_one() or "{}")


def test_reports_after_the_summary_refresh_the_runs_stored_totals_at_most_once_per_interval(engine):
    run_id, deliveries = sms_run(engine, ["+436641000041", "+436641000042", "+436641000043"])
    with engine.begin() as conn:  # what the run's `summarize` task leaves: a finished run
        conn.execute(
            text("UPDATE segmail_mailing_runs SET status = 'succeeded' WHERE id = :r"), {"r": run_id}
        )
    refresh_totals([run_id], engine=engine)
    assert stored_totals(engine, run_id)["sent"] == 3
    refresher = TotalsRefresher(interval=3.0)  # long enough that a loaded machine stays within it
    refreshed = []
    real = TotalsRefresher._refresh

    def counting(self, run, engine_, scheduled=True):  # noqa: ANN001, ANN202
        refreshed.append(run)
        real(self, run, engine_, scheduled)

    token = SIGNER.sign(TokenPurpose.SMS_REPORT, deliveries[0])
    apply_delivery_report(token, 1, signer=SIGNER, engine=engine, settle_seconds=0, totals=refresher)
    assert stored_totals(engine, run_id)["statuses"].get("delivered") == 1  # the first one: at once

    TotalsRefresher._refresh = counting
    try:
        for delivery in deliveries[1:]:  # within the interval: one refresh at its end for both
            token = SIGNER.sign(TokenPurpose.SMS_REPORT, delivery)
            apply_delivery_report(token, 1, signer=SIGNER, engine=engine, settle_seconds=0, totals=refresher)
        assert refreshed == []  # nothing at once: one refresh is scheduled
        # A refresh that an earlier test scheduled for its run 1 may also land here: count ours.
        wait_for(lambda: list(refreshed), until=lambda r: r == [run_id], what="the scheduled refresh")
        wait_for(lambda: stored_totals(engine, run_id)["statuses"].get("delivered"), until=lambda n: n == 3)
    finally:
        TotalsRefresher._refresh = real
    assert refreshed == [run_id]
