"""Reports from the bounce mailbox applied to real deliveries (SQLite and PostgreSQL), through a fake
mailbox: hard and soft bounces, complaints, mailto unsubscribes, matching, idempotency and crashes.
The same with real Postfix and Dovecot is in test_bounce_mailbox.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
from bounce_support import (
    BOUNCE_DOMAIN,
    CONTEXT,
    FakeMailbox,
    activity,
    mailto_unsubscribe,
    report_for,
    snapshot,
    suppression,
)
from mailing_support import delivery_rows, send_newsletter
from segmail.feedback.mailbox import Folder
from segmail.feedback.process import process_mailbox
from segmail.feedback.tokens import TokenPurpose
from segmail.mailings.summary import FailureThresholdExceeded, refresh_totals, summarize_run
from segmail.store.read import run_totals
from sqlalchemy import text

REPORTED = (datetime.now(UTC) - timedelta(hours=3)).replace(microsecond=0)
REPORT_DATE = format_datetime(
    REPORTED.astimezone(timezone(timedelta(hours=1)))
)  # as a CET mail server says it


@pytest.fixture
def sent(newsletter_audience, smtp_sink, monkeypatch):
    """The newsletter sent once with VERP return paths; E1-E4 got a mail."""
    monkeypatch.setenv("SEGMAIL_BOUNCE_DOMAIN", BOUNCE_DOMAIN)
    run_id = send_newsletter(newsletter_audience, "first")
    return newsletter_audience, run_id, delivery_rows(newsletter_audience, run_id)


def read(engine, *messages: bytes, mailbox: FakeMailbox | None = None, **options) -> dict:
    mailbox = mailbox or FakeMailbox(list(messages))
    return process_mailbox(mailbox, context=CONTEXT, engine=engine, **options).counts


def test_a_hard_bounce_marks_the_mail_bounced_and_suppresses_the_address(sent):
    engine, run_id, rows = sent
    giulia = rows["E3"]
    mailbox = FakeMailbox([report_for(giulia, "postfix_unknown_user.eml", date=REPORT_DATE)])
    counts = read(engine, mailbox=mailbox)
    assert (counts["hard_bounces"], counts["suppressed"], counts["messages"]) == (1, 1, 1)
    after = delivery_rows(engine, run_id)["E3"]
    assert (after["status"], after["bounce"]) == ("bounced", "hard")
    assert after["reason"] == 'hard bounce: 5.1.1 unknown user: "giulia@example.it"'
    assert suppression(engine, "giulia@example.it") == {
        "reason": 'hard bounce: 5.1.1 unknown user: "giulia@example.it"',
        "source": "hard bounce",
        "mailing_run_id": run_id,
    }
    ((kind, run, detail, at),) = activity(engine, giulia["contact_id"])
    assert (kind, run, detail) == ("bounce", run_id, after["reason"])
    assert _utc(at) == REPORTED  # the report's date
    assert list(mailbox.folders[Folder.PROCESSED]) == [1] and not mailbox.inbox  # moved, not deleted
    second = send_newsletter(engine, "second")
    status, reason = (delivery_rows(engine, second)["E3"][k] for k in ("status", "reason"))
    assert status == "skipped" and reason.startswith("suppressed: hard bounce: 5.1.1")


def _utc(value) -> datetime:
    """A stored timestamp as aware UTC (SQLite gives text back, PostgreSQL a datetime)."""
    value = datetime.fromisoformat(value) if isinstance(value, str) else value
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def test_soft_bounces_suppress_after_three_in_a_row_across_runs(sent):
    engine, first, rows = sent
    runs = [first, send_newsletter(engine, "second"), send_newsletter(engine, "third")]
    chloe = [delivery_rows(engine, run)["E2"] for run in runs]
    counts = read(engine, *(report_for(d, "postfix_mailbox_full.eml") for d in chloe[:2]))
    assert (counts["soft_bounces"], counts["suppressed"]) == (2, 0)
    assert suppression(engine, "chloe@example.ca") is None
    assert delivery_rows(engine, first)["E2"]["status"] == "sent"  # a soft bounce keeps the status
    assert delivery_rows(engine, first)["E2"]["bounce"] == "soft"
    counts = read(engine, report_for(chloe[2], "postfix_mailbox_full.eml"))
    assert (counts["soft_bounces"], counts["suppressed"]) == (1, 1)
    found = suppression(engine, "chloe@example.ca")
    assert found["source"] == "soft bounces" and found["reason"].startswith(
        "3 soft bounces in a row, the last: 452"
    )
    assert [a[0] for a in activity(engine, chloe[0]["contact_id"])] == ["soft bounce"] * 3


def test_a_successful_delivery_in_between_resets_the_streak(sent):
    engine, first, _ = sent
    runs = [first] + [send_newsletter(engine, f"run-{n}") for n in range(2, 5)]
    chloe = [delivery_rows(engine, run)["E2"] for run in runs]
    # Runs 1, 2 and 4 soft-bounce; run 3 was delivered (nothing came back for it).
    read(engine, *(report_for(chloe[i], "postfix_mailbox_full.eml") for i in (0, 1, 3)))
    assert suppression(engine, "chloe@example.ca") is None


def test_reports_arriving_out_of_order_still_make_a_streak(sent):
    engine, first, _ = sent
    runs = [first, send_newsletter(engine, "second"), send_newsletter(engine, "third")]
    chloe = [delivery_rows(engine, run)["E2"] for run in runs]
    # The third run's report first, then the first's, then a delay warning and the failure of the second.
    read(engine, *(report_for(chloe[i], "postfix_mailbox_full.eml") for i in (2, 0)))
    assert suppression(engine, "chloe@example.ca") is None
    counts = read(
        engine, report_for(chloe[1], "postfix_delayed.eml"), report_for(chloe[1], "postfix_mailbox_full.eml")
    )
    assert counts["soft_bounces"] == 2 and counts["suppressed"] == 1
    assert suppression(engine, "chloe@example.ca")["source"] == "soft bounces"


def test_a_delay_warning_then_the_failure_of_the_same_mail_count_once(sent):
    engine, run_id, rows = sent
    read(
        engine,
        report_for(rows["E2"], "postfix_delayed.eml"),
        report_for(rows["E2"], "postfix_mailbox_full.eml"),
    )
    with engine.connect() as conn:
        streak_rows = conn.execute(
            text("SELECT COUNT(*) FROM segmail_deliveries WHERE bounce = 'soft' AND mailing_run_id = :r"),
            {"r": run_id},
        ).scalar_one()
        reports = conn.execute(text("SELECT COUNT(*) FROM segmail_feedback_reports")).scalar_one()
    assert (streak_rows, reports) == (1, 2)  # both reports kept as evidence


def test_a_hard_bounce_after_soft_ones_suppresses_at_once(sent):
    engine, run_id, rows = sent
    read(engine, report_for(rows["E2"], "postfix_delayed.eml"), report_for(rows["E2"], "qmail.eml"))
    after = delivery_rows(engine, run_id)["E2"]
    assert (after["status"], after["bounce"]) == ("bounced", "hard")
    assert suppression(engine, "chloe@example.ca")["source"] == "hard bounce"


def test_a_complaint_opts_the_address_out_and_suppresses_it(sent):
    engine, run_id, rows = sent
    anna = rows["E1"]
    counts = read(engine, report_for(anna, "arf_abuse.eml", date=REPORT_DATE))
    assert (counts["complaints"], counts["suppressed"]) == (1, 1)
    with engine.connect() as conn:
        opted = conn.execute(
            text(
                "SELECT external_id, email_opt_out_source, email_opt_out_run_id FROM segmail_contacts"
                " WHERE email_opt_out = :yes AND email_opt_out_run_id IS NOT NULL ORDER BY external_id"
            ),
            {"yes": True},
        ).all()
    # E7 shares anna's address: the opt-out belongs to the address.
    assert [tuple(r) for r in opted] == [
        ("E1", "complaint", run_id),
        ("E7", "complaint", run_id),
    ]
    assert suppression(engine, "anna@example.com")["source"] == "complaint"
    assert delivery_rows(engine, run_id)["E1"]["complained_at"] is not None
    ((kind, _, detail, _),) = activity(engine, anna["contact_id"])
    assert kind == "complaint" and detail == "spam complaint (abuse) reported by fbl.mailbox-provider.example"
    totals = run_totals(run_id, engine=engine)
    assert (totals["complained"], totals["delivered"], totals["complaint_rate"]) == (1, 4, 0.25)


def test_a_mailto_unsubscribe_opts_out_like_one_click(sent):
    engine, run_id, rows = sent
    counts = read(engine, mailto_unsubscribe(rows["E4"]))
    assert counts["unsubscribes"] == 1
    assert delivery_rows(engine, run_id)["E4"]["unsubscribed_at"] is not None
    assert suppression(engine, "bob@example.com")["source"] == "mailto"
    assert [a[:3] for a in activity(engine, rows["E4"]["contact_id"])] == [
        ("unsubscribe", run_id, "unsubscribed (mailto)")
    ]


@pytest.mark.parametrize(
    "make_report",
    [
        pytest.param(lambda d: report_for(d, "postfix_unknown_user.eml", token="b.1.1.forgedforgedforgedforgedforge"), id="forged-verp"),
        pytest.param(lambda d: report_for(d, "postfix_unknown_user.eml", token="not-a-token"), id="garbage-verp"),
        pytest.param(
            lambda d: report_for(d, "postfix_unknown_user.eml", token=_signed(TokenPurpose.UNSUBSCRIBE, d)),
            id="unsubscribe-token-as-verp",
        ),
        pytest.param(lambda d: mailto_unsubscribe(d, purpose=TokenPurpose.TEST), id="test-mail-mailto"),
        pytest.param(lambda d: mailto_unsubscribe(d, purpose=TokenPurpose.BOUNCE), id="bounce-token-as-mailto"),
    ],
)  # fmt: skip
def test_a_report_whose_token_does_not_name_a_delivery_changes_nothing(sent, make_report):
    engine, _, rows = sent
    before = snapshot(engine)
    mailbox = FakeMailbox([make_report(rows["E3"])])
    counts = read(engine, mailbox=mailbox)
    assert counts["unmatched"] == 1
    after = snapshot(engine)
    assert len(after.pop("segmail_feedback_reports")) == 1  # the evidence is kept
    before.pop("segmail_feedback_reports")
    assert after == before
    assert list(mailbox.folders[Folder.UNRECOGNISED]) == [1]


def _signed(purpose: TokenPurpose, delivery: dict) -> str:
    from bounce_support import SIGNER

    return SIGNER.sign(purpose, delivery["id"])


def test_without_verp_the_quoted_message_id_matches_but_only_for_the_address_mailed(sent):
    engine, run_id, rows = sent
    honest = report_for(rows["E3"], "postfix_unknown_user.eml", verp=False)
    wrong_address = report_for(rows["E3"], "postfix_unknown_user.eml", verp=False).replace(
        b"giulia@example.it", b"someone.else@example.it"
    )
    counts = read(engine, wrong_address, honest)
    assert (counts["unmatched"], counts["hard_bounces"]) == (1, 1)
    assert delivery_rows(engine, run_id)["E3"]["status"] == "bounced"


def test_auto_replies_and_unrecognised_mail_are_counted_and_left_alone(sent):
    engine, _, _ = sent
    before = snapshot(engine)
    corpus = __import__("bounce_support").CORPUS
    mailbox = FakeMailbox([(corpus / n).read_bytes() for n in ("auto_reply_ooo.eml", "human_reply.eml")])
    counts = read(engine, mailbox=mailbox)
    assert (counts["auto_replies"], counts["unrecognised"]) == (1, 1)
    assert sorted(mailbox.folders[Folder.UNRECOGNISED]) == [1, 2]
    after = snapshot(engine)
    assert len(after.pop("segmail_feedback_reports")) == 2
    before.pop("segmail_feedback_reports")
    assert after == before


def _mixed_reports(rows: dict) -> list[bytes]:
    return [
        report_for(rows["E3"], "postfix_unknown_user.eml"),
        report_for(rows["E2"], "postfix_mailbox_full.eml"),
        report_for(rows["E1"], "arf_abuse.eml"),
        mailto_unsubscribe(rows["E4"]),
        (__import__("bounce_support").CORPUS / "auto_reply_ooo.eml").read_bytes(),
    ]


def test_reading_the_same_reports_again_changes_nothing(sent):
    engine, _, rows = sent
    mailbox = FakeMailbox(_mixed_reports(rows))
    first = read(engine, mailbox=mailbox, batch_size=2)
    assert {
        k: first[k] for k in ("hard_bounces", "soft_bounces", "complaints", "unsubscribes", "auto_replies")
    } == dict.fromkeys(("hard_bounces", "soft_bounces", "complaints", "unsubscribes", "auto_replies"), 1)
    before = snapshot(engine)
    mailbox.put_back()
    again = read(engine, mailbox=mailbox, batch_size=2)
    assert (again["messages"], again["already_processed"], again["suppressed"]) == (5, 5, 0)
    assert snapshot(engine) == before
    assert len(mailbox.folders[Folder.PROCESSED]) == 4 and len(mailbox.folders[Folder.UNRECOGNISED]) == 1


def test_a_crash_between_commit_and_move_then_a_retry_loses_and_duplicates_nothing(sent):
    engine, _, rows = sent
    mailbox = FakeMailbox(_mixed_reports(rows))
    mailbox.fail_moves = 1  # the first batch is committed, then the task dies before moving it
    with pytest.raises(ConnectionError):
        read(engine, mailbox=mailbox, batch_size=3)
    assert len(mailbox.inbox) == 5  # nothing moved
    retry = read(engine, mailbox=mailbox, batch_size=3)
    assert (retry["already_processed"], retry["messages"]) == (3, 5)
    assert not mailbox.inbox
    _assert_each_effect_once(engine)


def test_a_failure_mid_batch_moves_what_was_committed_and_the_retry_does_the_rest(sent, monkeypatch):
    from segmail.feedback import process

    engine, _, rows = sent
    mailbox = FakeMailbox(_mixed_reports(rows))
    real, calls = process.process_message, []

    def dies_on_the_third(raw, **kwargs):
        calls.append(raw)
        if len(calls) == 3:
            raise OSError("database connection lost")
        return real(raw, **kwargs)

    monkeypatch.setattr(process, "process_message", dies_on_the_third)
    with pytest.raises(OSError):
        read(engine, mailbox=mailbox, batch_size=5)
    assert len(mailbox.inbox) == 3  # the two committed ones were moved
    monkeypatch.setattr(process, "process_message", real)
    retry = read(engine, mailbox=mailbox)
    assert (retry["messages"], retry["already_processed"]) == (3, 0)
    _assert_each_effect_once(engine)


def _assert_each_effect_once(engine) -> None:
    with engine.connect() as conn:
        reports = conn.execute(
            text("SELECT outcome, COUNT(*) FROM segmail_feedback_reports GROUP BY outcome")
        ).all()
        lines = conn.execute(
            text("SELECT kind, COUNT(*) FROM segmail_activity_log WHERE kind <> 'mailing' GROUP BY kind")
        ).all()
        suppressed = conn.execute(text("SELECT COUNT(*) FROM segmail_suppressions")).scalar_one()
    assert dict(reports) == {"applied": 4, "ignored": 1}
    assert dict(lines) == {"bounce": 1, "soft bounce": 1, "complaint": 1, "unsubscribe": 1}
    assert suppressed == 3  # giulia (hard), anna (complaint), bob (mailto)


def test_run_totals_rates_and_the_limits_that_turn_a_run_red(sent):
    engine, run_id, rows = sent
    from segmail.mailings.definition import get_mailing

    summarize_run(run_id, mailing=get_mailing("newsletter"), engine=engine)  # nothing came back yet
    read(
        engine,
        report_for(rows["E3"], "postfix_unknown_user.eml"),
        report_for(rows["E2"], "postfix_mailbox_full.eml"),
    )
    totals = run_totals(run_id, engine=engine)
    assert {
        k: totals[k] for k in ("sent", "bounced", "accepted", "delivered", "bounced_hard", "bounced_soft")
    } == {
        "sent": 3,
        "bounced": 1,
        "accepted": 4,
        "delivered": 2,
        "bounced_hard": 1,
        "bounced_soft": 1,
    }
    assert totals["bounce_rate"] == 0.5
    crossed = refresh_totals({run_id}, engine=engine)
    assert crossed == {run_id: ["bounce rate 50.00% is above 5.00%"]}
    assert refresh_totals({run_id}, engine=engine) == {}  # crossed once, said once
    with pytest.raises(FailureThresholdExceeded, match="bounce rate 50.00% is above 5.00%"):
        summarize_run(run_id, mailing=get_mailing("newsletter"), engine=engine)


def test_the_read_queries_for_the_pages_and_the_chart(sent):
    from segmail.store.read import feedback_rates, feedback_reports_page, mailing_runs

    engine, run_id, rows = sent
    read(
        engine,
        report_for(rows["E3"], "postfix_unknown_user.eml"),
        report_for(rows["E1"], "arf_abuse.eml"),
        report_for(rows["E2"], "postfix_unknown_user.eml", token="forged"),
    )
    (chart,) = feedback_rates(engine=engine)
    assert (chart["run"], chart["bounce_rate"], chart["complaint_rate"]) == (run_id, 0.25, round(1 / 3, 5))
    (listed,) = mailing_runs(engine=engine)
    assert (listed["bounced"], listed["bounced_hard"], listed["complained"], listed["delivered"]) == (
        1,
        1,
        1,
        3,
    )
    reports, total = feedback_reports_page(engine, outcome=None, search=None, page=1)
    assert total == 3 and [r["outcome"] for r in reports] == ["unmatched", "applied", "applied"]
    unmatched, _ = feedback_reports_page(engine, outcome="unmatched", search="chloe", page=1)
    assert unmatched[0]["detail"].startswith("its token does not verify")
