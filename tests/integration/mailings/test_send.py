"""Sending through a real SMTP server in the test process: what arrives, and what is recorded."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parseaddr
from pathlib import Path

import pytest
from mailing_support import delivery_rows as deliveries
from segmail.mailings import send
from segmail.mailings.audience import freeze_audience
from segmail.mailings.definition import get_mailing
from segmail.mailings.deliveries import plan_batches
from segmail.mailings.summary import FailureThresholdExceeded, summarize_run
from segmail.mailings.transport import SmtpHookTransport, TransientSendError
from sqlalchemy import text

ATTACHMENT = Path(__file__).resolve().parents[3] / "include" / "attachments" / "preisliste-fruehjahr.pdf"


def run_mailing(engine, mailing, *, dag_run_id="run-1", final_try=False, **freeze):
    run_id = freeze_audience(mailing, dag_run_id=dag_run_id, engine=engine, **freeze)
    results = []
    for batch in plan_batches(run_id, batch_size=mailing.batch_size, engine=engine):
        results.append(
            send.send_batch(
                batch["batch_id"],
                mailing=mailing,
                engine=engine,
                final_try=final_try,
                transport=SmtpHookTransport(mailing.smtp_conn_id),
            )
        )
    return run_id, results


def by_recipient(sink) -> dict[str, list]:
    out: dict[str, list] = {}
    for message in sink.messages:
        for rcpt in message.recipients:
            out.setdefault(rcpt, []).append(message.parsed())
    return out


def test_newsletter_languages_headers_parts_attachments_and_skips(newsletter_audience, smtp_sink):
    engine = newsletter_audience
    mailing = get_mailing("newsletter")
    run_id, results = run_mailing(engine, mailing)
    received = by_recipient(smtp_sink)
    assert sorted(received) == [
        "anna@example.com",
        "bob@example.com",
        "chloe@example.ca",
        "giulia@example.it",
    ]
    assert all(len(mails) == 1 for mails in received.values())

    anna = received["anna@example.com"][0]
    assert anna["Subject"] == "Anna, Ihr Newsletter: Frühjahrs-Check & neue Modelle"  # de-AT -> de
    assert anna["From"] == "Autohaus Demo – Service <newsletter@autohaus-demo.example>"  # variant's sender
    assert received["chloe@example.ca"][0]["Subject"].startswith("Chloé, votre lettre")  # fr-CA -> fr
    assert "your newsletter" in received["giulia@example.it"][0]["Subject"]  # it -> default en
    assert anna["Reply-To"] == "service@autohaus-demo.example"
    assert anna["List-Unsubscribe"].startswith("<https://unsubscribe.autohaus-demo.example/u/u.")
    assert "<mailto:unsubscribe+u." in anna["List-Unsubscribe"]
    assert anna["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert anna["List-Id"] == "Monthly newsletter <newsletter.autohaus-demo.example>"
    assert received["chloe@example.ca"][0]["List-Unsubscribe"] != anna["List-Unsubscribe"]
    assert anna["Date"] is not None
    html = anna.get_body(("html",)).get_content()
    plain = anna.get_body(("plain",)).get_content()
    assert "Guten Tag Anna Müller" in html and "Maria Berger" in html
    assert "Guten Tag Anna Müller" in plain and "<h2>" not in plain
    (attachment,) = list(anna.iter_attachments())
    assert attachment.get_filename() == "preisliste-fruehjahr.pdf"
    assert attachment.get_content() == ATTACHMENT.read_bytes()  # byte-identical

    bob = received["bob@example.com"][0]
    assert bob["Bcc"] is None  # the CR/LF in his last name did not become a header
    assert parseaddr(bob["To"])[1] == "bob@example.com"
    assert "Smith" in bob["To"]
    assert smtp_sink.messages[0].recipients == [parseaddr(smtp_sink.messages[0].parsed()["To"])[1]]

    rows = deliveries(engine, run_id)
    assert "E8" not in rows  # not in the audience
    assert {k: (r["status"], r["reason"]) for k, r in rows.items() if r["status"] == "skipped"} == {
        "E5": ("skipped", "opted out"),
        "E6": ("skipped", "no e-mail address"),
        "E7": ("skipped", "duplicate address: another contact of this run gets the mail at this address"),
    }
    sent = {k: r for k, r in rows.items() if r["status"] == "sent"}
    assert sorted(sent) == ["E1", "E2", "E3", "E4"]
    message_ids = {r["message_id"] for r in sent.values()}
    assert len(message_ids) == 4
    assert (
        anna["Message-ID"]
        == rows["E1"]["message_id"]
        == f"<segmail.{run_id}.{rows['E1']['contact_id']}@autohaus-demo.example>"
    )
    assert all(r["smtp_code"] == 250 and r["smtp_response"].startswith("2.0.0 Ok") for r in sent.values())
    with engine.connect() as conn:
        activity = conn.execute(
            text(
                "SELECT c.external_id, a.language, a.subject, a.salesperson_code, a.message_id FROM segmail_activity_log a"
                " JOIN segmail_contacts c ON c.id = a.contact_id ORDER BY c.external_id"
            )
        ).all()
    assert [(a.external_id, a.language) for a in activity] == [
        ("E1", "de"),
        ("E2", "fr"),
        ("E3", "en"),
        ("E4", "en"),
    ]
    assert activity[0].salesperson_code == "MB" and activity[0].message_id == rows["E1"]["message_id"]
    totals = summarize_run(run_id, mailing=mailing, engine=engine)
    assert (totals["sent"], totals["skipped"], totals["failed"]) == (4, 3, 0)
    assert totals["by_language"]["de"] == {"sent": 1, "skipped": 3}


def test_a_permanent_rejection_fails_that_mail_with_the_servers_reply(newsletter_audience, smtp_sink):
    smtp_sink.handler.refuse["chloe@example.ca"] = "550 5.1.1 <chloe@example.ca>: Recipient address rejected"
    run_id, _ = run_mailing(newsletter_audience, get_mailing("newsletter"))
    rows = deliveries(newsletter_audience, run_id)
    assert (rows["E2"]["status"], rows["E2"]["smtp_code"]) == ("failed", 550)
    assert "Recipient address rejected" in rows["E2"]["smtp_response"]
    assert sorted(r for r, row in rows.items() if row["status"] == "sent") == ["E1", "E3", "E4"]
    with pytest.raises(FailureThresholdExceeded, match="1 of 4 mails failed"):
        summarize_run(run_id, mailing=get_mailing("newsletter"), engine=newsletter_audience)


def test_a_dropped_connection_mid_batch_then_a_retry_delivers_each_mail_exactly_once(
    newsletter_audience, smtp_sink
):
    engine = newsletter_audience
    mailing = get_mailing("newsletter").model_copy(update={"batch_size": 10})
    run_id = freeze_audience(mailing, dag_run_id="drop", engine=engine)
    batches = plan_batches(run_id, batch_size=10, engine=engine)
    assert [b["label"] for b in batches] == ["de #1", "en #2", "fr #3"]
    en = next(b for b in batches if b["label"].startswith("en"))  # Giulia and Bob
    smtp_sink.handler.drop_at_data = 2  # the second mail of the batch meets a dropped connection
    with pytest.raises(TransientSendError, match="1 mail\\(s\\) left pending"):
        send.send_batch(
            en["batch_id"], mailing=mailing, engine=engine, transport=SmtpHookTransport("smtp_default")
        )
    first_try = {k: r["status"] for k, r in deliveries(engine, run_id).items() if k in ("E3", "E4")}
    assert sorted(first_try.values()) == ["pending", "sent"]
    # The retry (and any further one) sends only what is still pending.
    for _ in range(2):
        send.send_batch(
            en["batch_id"], mailing=mailing, engine=engine, transport=SmtpHookTransport("smtp_default")
        )
    received = by_recipient(smtp_sink)
    assert len(received["giulia@example.it"]) == 1 and len(received["bob@example.com"]) == 1
    rows = deliveries(engine, run_id)
    assert rows["E3"]["status"] == rows["E4"]["status"] == "sent"


def test_transient_refusals_stay_pending_and_fail_when_retries_are_exhausted(newsletter_audience, smtp_sink):
    engine = newsletter_audience
    mailing = get_mailing("newsletter")
    smtp_sink.handler.refuse["giulia@example.it"] = "451 4.7.1 Greylisted, try again later"
    smtp_sink.handler.refuse_times["giulia@example.it"] = 1
    smtp_sink.handler.refuse["bob@example.com"] = "452 4.2.2 Mailbox full"
    run_id = freeze_audience(mailing, dag_run_id="transient", engine=engine)
    (en,) = [b for b in plan_batches(run_id, batch_size=500, engine=engine) if b["label"].startswith("en")]
    send_once = lambda final: send.send_batch(  # noqa: E731
        en["batch_id"],
        mailing=mailing,
        engine=engine,
        final_try=final,
        transport=SmtpHookTransport("smtp_default"),
    )
    with pytest.raises(TransientSendError):
        send_once(False)
    pending = deliveries(engine, run_id)
    assert (pending["E3"]["status"], pending["E3"]["smtp_code"]) == ("pending", 451)  # the last reply, kept
    with pytest.raises(TransientSendError):
        send_once(False)  # greylisting passed: Giulia is sent now, Bob still refused
    result = send_once(True)
    assert (result.failed, result.pending) == (1, 0)
    rows = deliveries(engine, run_id)
    assert rows["E3"]["status"] == "sent" and rows["E3"]["attempts"] == 1
    assert (rows["E3"]["smtp_code"], rows["E3"]["smtp_response"][:6]) == (250, "2.0.0 ")
    assert rows["E4"]["status"] == "failed"
    assert rows["E4"]["reason"] == "retries exhausted: 452 4.2.2 Mailbox full"
    # The final failure keeps the server's last code and reply in their columns, not only in the reason.
    assert (rows["E4"]["smtp_code"], rows["E4"]["smtp_response"]) == (452, "4.2.2 Mailbox full")
    assert len(by_recipient(smtp_sink)["giulia@example.it"]) == 1


def test_freezing_again_returns_the_same_run_and_a_rerun_sends_nothing_twice(newsletter_audience, smtp_sink):
    engine = newsletter_audience
    mailing = get_mailing("newsletter")
    run_id, _ = run_mailing(engine, mailing, dag_run_id="same")
    assert len(smtp_sink.messages) == 4
    # New contact after the start: the frozen audience does not grow; a cleared run sends nothing again.
    from segmail.imports.pipeline import import_file

    late = Path(smtp_sink.handler.store_dir).parent / "late.csv"
    late.write_text(
        "Country Code,First Name,Last Name,Email,Segments\nDE,Late,Comer,late@example.de,Newsletter\n"
    )
    import_file(late, engine=engine)
    again, _ = run_mailing(engine, mailing, dag_run_id="same")
    assert again == run_id
    assert len(smtp_sink.messages) == 4
    assert len(deliveries(engine, run_id)) == 7


def test_dry_run_renders_and_sends_nothing(newsletter_audience, smtp_sink):
    run_id, _ = run_mailing(newsletter_audience, get_mailing("newsletter"), dry_run=True)
    assert smtp_sink.messages == []
    statuses = {r["reason"] for r in deliveries(newsletter_audience, run_id).values() if r["reason"]}
    assert "dry run: rendered, not sent" in statuses


def test_language_filter_and_recipient_cap(newsletter_audience, smtp_sink):
    run_id, _ = run_mailing(
        newsletter_audience, get_mailing("newsletter"), languages=["en", "fr"], max_recipients=2
    )
    assert len(smtp_sink.messages) == 2
    rows = deliveries(newsletter_audience, run_id)
    assert {r["language"] for r in rows.values()} <= {"en", "fr"}


def test_rate_limit_paces_the_batch(newsletter_audience, smtp_sink):
    mailing = get_mailing("newsletter").model_copy(update={"rate_limit_per_second": 10})
    start = datetime.now(UTC)
    run_mailing(newsletter_audience, mailing)
    # 4 mails in 3 batches at 10/s per connection: the second mail of the en batch waits >= 0.1 s.
    assert (datetime.now(UTC) - start).total_seconds() >= 0.1
    assert len(smtp_sink.messages) == 4


def test_status_command_lists_runs_and_mails(newsletter_audience, smtp_sink, capsys):
    import json

    from segmail.cli.main import main

    smtp_sink.handler.refuse["bob@example.com"] = "550 5.1.1 No such user"
    run_id, _ = run_mailing(newsletter_audience, get_mailing("newsletter"))
    assert main(["status", "newsletter", "--format", "json"]) == 0
    (run,) = json.loads(capsys.readouterr().out)
    assert (run["run"], run["sent"], run["failed"], run["skipped"]) == (run_id, 3, 1, 3)
    assert main(["status", "--run", str(run_id), "--failed"]) == 0
    out = capsys.readouterr().out
    assert "bob@example.com" in out and "550" in out and "anna@example.com" not in out


@pytest.mark.parametrize(
    "pipelining", [pytest.param(True, id="pipelined"), pytest.param(False, id="lockstep")]
)
@pytest.mark.parametrize(
    ("stage", "reply", "status"),
    [
        pytest.param("refuse", "550 5.1.1 <giulia@example.it>: No such user", "failed", id="rcpt-5xx"),
        pytest.param("refuse", "452 4.2.2 Mailbox full", "pending", id="rcpt-4xx"),
        pytest.param("refuse_content", "554 5.7.1 Message rejected as spam", "failed", id="content-5xx"),
        pytest.param("refuse_content", "451 4.3.0 Try again later", "pending", id="content-4xx"),
    ],
)
def test_each_reply_is_classified_for_its_own_mail(
    newsletter_audience, smtp_sink, pipelining, stage, reply, status
):
    """Against a real server, pipelined or not, over two connections: the refused mail gets its
    code and text, the other mail of the batch is sent once."""
    engine = newsletter_audience
    smtp_sink.handler.pipelining = pipelining
    getattr(smtp_sink.handler, stage)["giulia@example.it"] = reply
    mailing = get_mailing("newsletter")
    run_id = freeze_audience(mailing, dag_run_id="classify", engine=engine)
    (en,) = [b for b in plan_batches(run_id, batch_size=500, engine=engine) if b["label"].startswith("en")]
    transport = SmtpHookTransport("smtp_default", connections=2)
    if status == "pending":
        with pytest.raises(TransientSendError):
            send.send_batch(en["batch_id"], mailing=mailing, engine=engine, transport=transport)
    else:
        send.send_batch(en["batch_id"], mailing=mailing, engine=engine, transport=transport)
    rows = deliveries(engine, run_id)
    code, text = reply.split(" ", 1)
    assert (rows["E3"]["status"], rows["E3"]["smtp_code"], rows["E3"]["smtp_response"]) == (
        status,
        int(code),
        text,
    )
    assert rows["E4"]["status"] == "sent"
    assert [r for m in smtp_sink.messages for r in m.recipients] == ["bob@example.com"]


def test_a_new_dag_run_for_the_same_logical_date_carries_the_first_run_on(newsletter_audience, smtp_sink):
    """Run identity: an interval (logical date) is frozen and sent once, whatever its DAG run id;
    dry runs and runs without a logical date are new runs."""
    engine = newsletter_audience
    mailing = get_mailing("newsletter")
    interval = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    first, _ = run_mailing(
        engine, mailing, dag_run_id="scheduled__2026-03-01T08:00:00+00:00", logical_date=interval
    )
    again, _ = run_mailing(
        engine, mailing, dag_run_id="manual__2026-03-02T10:11:12+00:00", logical_date=interval
    )
    assert again == first
    assert len(smtp_sink.messages) == 4  # nothing twice
    with engine.connect() as conn:
        (dag_run_id,) = conn.execute(
            text("SELECT dag_run_id FROM segmail_mailing_runs WHERE id = :r"), {"r": first}
        ).one()
    assert dag_run_id == "manual__2026-03-02T10:11:12+00:00"  # the DAG run that exists now finds it
    dry, _ = run_mailing(
        engine, mailing, dag_run_id="dry", logical_date=datetime(2026, 4, 1, 8, tzinfo=UTC), dry_run=True
    )
    real, _ = run_mailing(
        engine, mailing, dag_run_id="real", logical_date=datetime(2026, 4, 1, 8, tzinfo=UTC)
    )
    manual, _ = run_mailing(engine, mailing, dag_run_id="manual", logical_date=None)
    assert len({first, dry, real, manual}) == 4
    assert len(smtp_sink.messages) == 12
