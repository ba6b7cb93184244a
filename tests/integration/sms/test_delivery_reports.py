"""A delivery report that overtakes the sending task's commit (Kannel reports within milliseconds):
it waits for that commit, so the row keeps the gateway's answer; if the commit never comes (the
task died after submitting), the report lands on the `pending` row, which is then never sent again."""

from __future__ import annotations

import threading
import time

from segmail.feedback.tokens import TokenPurpose, TokenSigner
from segmail.sms.reports import ReportOutcome, apply_delivery_report
from sms_support import delivery_rows, sms_run
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
