"""End to end with the real servers (SQLite and PostgreSQL): the newsletter goes through Postfix,
which bounces an unknown user itself (5.1.1) and gives up on a full mailbox (452 4.2.2); its DSNs,
an ARF complaint, a mailto unsubscribe and an out-of-office reply all travel through Postfix into
the Maildir that Dovecot serves over IMAP; `mail_feedback`'s processing reads them from there."""

from __future__ import annotations

import email
import smtplib
import uuid
from datetime import UTC, datetime
from email import policy
from email.utils import format_datetime

import pytest
from bounce_support import (
    BOUNCE_DOMAIN,
    activity,
    mail_servers,
    snapshot,
    suppression,
)
from mailing_support import delivery_rows, send_newsletter
from segmail.errors import SegmailError
from segmail.feedback import mailbox as mailboxes
from segmail.feedback import process
from segmail.mailings.definition import get_mailing
from segmail.mailings.summary import summarize_run
from segmail.settings import connection
from sqlalchemy import text

__all__ = ["mail_servers"]  # the fixture
RECIPIENTS = "recipients.example"
CSV = (
    "External ID,Country Code,First Name,Last Name,Email,Language,Segments\n"
    "R1,DE,Gustav,Good,good@recipients.example,de,Newsletter\n"
    "R2,DE,Ulla,Unknown,unknown@recipients.example,de,Newsletter\n"
    "R3,DE,Fritz,Full,full@recipients.example,de,Newsletter\n"
    "R4,GB,Carla,Complains,carla@recipients.example,en,Newsletter\n"
    "R5,GB,Dora,Dropout,dora@recipients.example,en,Newsletter\n"
    "R6,GB,Petra,Peters,petra@recipients.example,en,Newsletter\n"
)


@pytest.fixture
def recipients(engine, tmp_path):
    from segmail.contacts import segments
    from segmail.imports.pipeline import import_file

    segments.create_segment(name="Newsletter", engine=engine)
    path = tmp_path / "recipients.csv"
    path.write_text(CSV, encoding="utf-8")
    assert import_file(path, engine=engine).created == 6
    return engine


# ---------------------------------------------------------------- what recipients and providers send


def received(servers, user: str) -> email.message.EmailMessage:
    """The one mail the user's Maildir holds (as Postfix delivered it, with its Return-Path)."""
    (path,) = [p for p in servers.user_maildir(user).glob("*/*") if p.is_file()]
    return email.message_from_bytes(path.read_bytes(), policy=policy.default)


def submit(servers, sender: str, recipient: str, data: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", servers.smtp_port, timeout=10) as client:
        client.sendmail(sender, [recipient], data)


def complain(servers, user: str) -> None:
    """The user's provider sends an ARF report (RFC 5965) with the mail attached."""
    original = received(servers, user)
    boundary = f"arf-{uuid.uuid4().hex}"
    head = (
        f"From: Feedback Loop <fbl@isp.example>\r\nTo: fbl@{BOUNCE_DOMAIN}\r\nSubject: abuse report\r\n"
        f"Date: {format_datetime(datetime.now(UTC))}\r\nMessage-ID: <{boundary}@isp.example>\r\n"
        f'MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=feedback-report; boundary="{boundary}"'
        f"\r\n\r\n--{boundary}\r\nContent-Type: text/plain\r\n\r\nAn abuse report.\r\n"
        f"--{boundary}\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\n"
        f"User-Agent: isp-fbl/1.0\r\nVersion: 1\r\nOriginal-Mail-From: {original['Return-Path']}\r\n"
        f"Original-Rcpt-To: <{user}@{RECIPIENTS}>\r\n\r\n--{boundary}\r\nContent-Type: message/rfc822\r\n\r\n"
    )
    body = original.as_bytes(policy=policy.SMTP)
    submit(
        servers,
        "fbl@isp.example",
        f"fbl@{BOUNCE_DOMAIN}",
        head.encode() + body + f"\r\n--{boundary}--\r\n".encode(),
    )


def unsubscribe_by_mail(servers, user: str) -> None:
    """The user's mail client sends a mail to the mailto: of List-Unsubscribe."""
    links = [link.strip(" <>") for link in str(received(servers, user)["List-Unsubscribe"]).split(",")]
    (mailto,) = [link.removeprefix("mailto:") for link in links if link.startswith("mailto:")]
    data = f"From: {user}@{RECIPIENTS}\r\nTo: {mailto}\r\nSubject: unsubscribe\r\nMessage-ID: <{uuid.uuid4().hex}@{RECIPIENTS}>\r\n\r\n"
    submit(servers, f"{user}@{RECIPIENTS}", mailto, data.encode())


def auto_reply(servers, user: str) -> None:
    """An out-of-office reply to the envelope sender (the VERP address), as RFC 3834 says."""
    original = received(servers, user)
    verp = str(original["Return-Path"]).strip("<>")
    data = (
        f"From: {user}@{RECIPIENTS}\r\nTo: {verp}\r\nSubject: Automatic reply: {original['Subject']}\r\n"
        f"Auto-Submitted: auto-replied\r\nIn-Reply-To: {original['Message-ID']}\r\n"
        f"Message-ID: <{uuid.uuid4().hex}@{RECIPIENTS}>\r\n\r\nI am out of the office.\r\n"
    )
    submit(servers, "", verp, data.encode())


def folders(servers) -> dict[str, int]:
    """How many messages each folder of the bounce mailbox holds (read over IMAP)."""
    with mailboxes.ImapMailbox(connection("segmail_bounces")) as box:
        return {
            name: box.client.folder_status(name, [b"MESSAGES"])[b"MESSAGES"]
            for name in ("INBOX", *box.targets.values())
        }


def copy_back(servers) -> None:
    """Put copies of every processed message into the INBOX again (as if restored by hand)."""
    with mailboxes.ImapMailbox(connection("segmail_bounces")) as box:
        for name in box.targets.values():
            box.client.select_folder(name)
            box.client.copy(box.client.search("ALL"), "INBOX")


# ---------------------------------------------------------------- the tests


def test_bounces_complaints_and_unsubscribes_travel_through_postfix_and_dovecot(recipients, mail_servers):
    engine, servers = recipients, mail_servers
    first = send_newsletter(engine, "first")
    summarize_run(first, mailing=get_mailing("newsletter"), engine=engine)  # nothing has come back yet
    servers.wait_idle()  # Postfix has bounced unknown@ and given up on full@
    complain(servers, "carla")
    unsubscribe_by_mail(servers, "dora")
    auto_reply(servers, "petra")
    servers.wait_idle()

    counts = process.read_feedback(engine=engine)  # what the DAG's task calls
    assert counts == {
        "messages": 5,
        "hard_bounces": 1,
        "soft_bounces": 1,
        "complaints": 1,
        "unsubscribes": 1,
        "auto_replies": 1,
        "unrecognised": 0,
        "unmatched": 0,
        "already_processed": 0,
        "suppressed": 3,
        "runs_updated": 1,
        "crossed_limits": [first],  # 2 bounces of 6 mails
    }
    rows = delivery_rows(engine, first)
    assert (rows["R2"]["status"], rows["R2"]["bounce"]) == ("bounced", "hard")
    assert rows["R2"]["reason"] == 'hard bounce: 5.1.1 unknown user: "unknown@recipients.example"'
    assert (rows["R3"]["status"], rows["R3"]["bounce"]) == ("sent", "soft")
    assert "452 4.2.2" in rows["R3"]["reason"] and "Mailbox full" in rows["R3"]["reason"]
    assert rows["R4"]["complained_at"] is not None and rows["R5"]["unsubscribed_at"] is not None
    assert (rows["R1"]["bounce"], rows["R6"]["bounce"]) == (None, None)
    assert suppression(engine, "unknown@recipients.example")["source"] == "hard bounce"
    assert suppression(engine, "full@recipients.example") is None  # 1 soft bounce of 3
    assert suppression(engine, "carla@recipients.example")["source"] == "complaint"
    assert suppression(engine, "dora@recipients.example")["source"] == "mailto"
    assert [a[0] for a in activity(engine, rows["R3"]["contact_id"])] == ["soft bounce"]
    assert folders(servers) == {"INBOX": 0, "segmail/processed": 4, "segmail/unrecognised": 1}
    with pytest.raises(SegmailError, match=rf"run {first} \(newsletter\): bounce rate 33.33% is above 5.00%"):
        process.summarize_feedback(counts, engine=engine)

    # Read again: the mailbox is empty. Put every report back: each is known, nothing changes.
    assert process.read_feedback(engine=engine)["messages"] == 0
    before = snapshot(engine)
    copy_back(servers)
    again = process.read_feedback(engine=engine)
    assert (again["messages"], again["already_processed"], again["suppressed"]) == (5, 5, 0)
    assert snapshot(engine) == before
    assert folders(servers) == {"INBOX": 0, "segmail/processed": 8, "segmail/unrecognised": 2}

    # The next runs skip the suppressed and opted-out addresses, and the full mailbox bounces twice more.
    second = send_newsletter(engine, "second")
    after = delivery_rows(engine, second)
    assert (after["R2"]["status"], after["R2"]["reason"]) == (
        "skipped",
        'suppressed: hard bounce: 5.1.1 unknown user: "unknown@recipients.example"',
    )
    assert after["R4"]["status"] == after["R5"]["status"] == "skipped"
    assert [after[r]["status"] for r in ("R1", "R3", "R6")] == ["sent"] * 3
    _soft_bounce_once_more(servers, engine)
    assert suppression(engine, "full@recipients.example") is None
    send_newsletter(engine, "third")
    _soft_bounce_once_more(servers, engine)
    found = suppression(engine, "full@recipients.example")
    assert found["source"] == "soft bounces" and found["reason"].startswith(
        "3 soft bounces in a row, the last: 452 4.2.2"
    )
    fourth = delivery_rows(engine, send_newsletter(engine, "fourth"))
    assert fourth["R3"]["status"] == "skipped" and fourth["R3"]["reason"].startswith(
        "suppressed: 3 soft bounces"
    )


def _soft_bounce_once_more(servers, engine) -> None:
    servers.wait_idle()
    counts = process.read_feedback(engine=engine)
    assert (counts["messages"], counts["soft_bounces"]) == (1, 1)


class KilledBeforeTheMove(mailboxes.ImapMailbox):
    """The task dies after the first batch's reports are committed, before its IMAP move."""

    def move(self, uids, folder):
        raise ConnectionResetError("task killed")


def test_a_task_killed_between_commit_and_move_loses_and_duplicates_nothing(
    recipients, mail_servers, monkeypatch
):
    engine, servers = recipients, mail_servers
    first = send_newsletter(engine, "first")
    servers.wait_idle()
    complain(servers, "carla")
    unsubscribe_by_mail(servers, "dora")
    servers.wait_idle()
    monkeypatch.setenv("SEGMAIL_FEEDBACK_BATCH_SIZE", "2")
    with monkeypatch.context() as killed:
        killed.setattr(
            mailboxes, "configured_mailbox", lambda: KilledBeforeTheMove(connection("segmail_bounces"))
        )
        with pytest.raises(ConnectionResetError):
            process.read_feedback(engine=engine)
    assert folders(servers)["INBOX"] == 4
    retry = process.read_feedback(engine=engine)  # Airflow's retry of the task
    assert (retry["messages"], retry["already_processed"]) == (4, 2)
    assert folders(servers) == {"INBOX": 0, "segmail/processed": 4, "segmail/unrecognised": 0}
    with engine.connect() as conn:
        reports = conn.execute(
            text("SELECT COUNT(*), COUNT(DISTINCT delivery_id) FROM segmail_feedback_reports")
        ).one()
        lines = dict(
            conn.execute(
                text("SELECT kind, COUNT(*) FROM segmail_activity_log WHERE kind <> 'mailing' GROUP BY kind")
            ).all()
        )
    assert tuple(reports) == (4, 4)
    assert lines == {"bounce": 1, "soft bounce": 1, "complaint": 1, "unsubscribe": 1}
    assert delivery_rows(engine, first)["R2"]["status"] == "bounced"


@pytest.mark.airflow
def test_the_mail_feedback_dag_reads_the_mailbox(recipients, mail_servers, airflow_home):
    from tests_support import get_dag, states

    engine, servers = recipients, mail_servers
    first = send_newsletter(engine, "first")
    servers.wait_idle()
    run = get_dag("mail_feedback").test()
    assert states(run) == {"read_mailbox": "success", "summarize": "success"}
    assert delivery_rows(engine, first)["R2"]["status"] == "bounced"
    assert suppression(engine, "unknown@recipients.example")["source"] == "hard bounce"
    before = snapshot(engine)
    again = get_dag("mail_feedback").test()
    assert states(again) == {"read_mailbox": "success", "summarize": "success"}
    assert snapshot(engine) == before
