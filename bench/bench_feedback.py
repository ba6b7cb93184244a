"""Feedback benchmark: reading a bounce mailbox of N reports (10,000 by default) from a real Dovecot
over IMAP, beside a raw IMAP FETCH of the same messages, in the same run.

Set up first (not timed): private Postfix and Dovecot instances (segmail.dev.mailservers; root and
Debian's postfix and dovecot-imapd needed), N contacts with one sent newsletter each (SQLite, or
--db-url), and N reports written into the Maildir Dovecot serves: Postfix DSNs (hard 5.1.1 and
soft 4.2.2), qmail text bounces (found by flufl.bounce), ARF complaints, mailto unsubscribes and
out-of-office replies, each naming its delivery by a signed VERP or unsubscribe token.

Timed, on one IMAP connection with batches of 200 each:
  baseline  FETCH BODY.PEEK[] of every message, nothing else;
  segmail   `process_mailbox` as the `mail_feedback` DAG runs it: FETCH, classify, verify the
            token, one transaction per report (processed-reports row, delivery, suppression,
            opt-out, activity), then MOVE to segmail/processed or segmail/unrecognised.

    make bench-feedback
    make bench-feedback BENCH_ARGS="--reports 2000"
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

from bench_send import seed_contacts

BOUNCE_DOMAIN = "bounces.bench.example"
MAILTO = "unsubscribe@bench.example"
BATCH = 200
# (share of the mailbox, template): the mix a newsletter sender's bounce mailbox sees.
MIX = (
    (0.50, "hard"),
    (0.20, "soft"),
    (0.10, "qmail"),
    (0.05, "complaint"),
    (0.05, "mailto"),
    (0.10, "auto_reply"),
)


def _dsn(n: int, to: str, address: str, message_id: str, status: str, diagnostic: str) -> str:
    return f"""Return-Path: <>
Delivered-To: {to}
Date: {format_datetime(datetime.now(UTC))}
From: Mail Delivery System <MAILER-DAEMON@mx.example.com>
Subject: Undelivered Mail Returned to Sender
To: {to}
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="b{n}"
Message-Id: <dsn.{n}@mx.example.com>

--b{n}
Content-Type: text/plain; charset=us-ascii

<{address}>: {diagnostic}

--b{n}
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.com

Final-Recipient: rfc822; {address}
Original-Recipient: rfc822;{address}
Action: failed
Status: {status}
Diagnostic-Code: smtp; {diagnostic}

--b{n}
Content-Type: text/rfc822-headers

Return-Path: <{to}>
From: Autohaus Demo <newsletter@autohaus-demo.example>
To: {address}
Subject: your newsletter
Message-ID: {message_id}

--b{n}--
"""


def _qmail(n: int, to: str, address: str, message_id: str) -> str:
    return f"""Return-Path: <>
Delivered-To: {to}
Date: {format_datetime(datetime.now(UTC))}
From: MAILER-DAEMON@mail.vintage-isp.example
To: {to}
Subject: failure notice
Message-ID: <qmail.{n}@mail.vintage-isp.example>

Hi. This is the qmail-send program at mail.vintage-isp.example.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<{address}>:
Sorry, no mailbox here by that name. (#5.1.1)

--- Below this line is a copy of the message.

Message-ID: {message_id}
"""


def _complaint(n: int, to: str, address: str, message_id: str) -> str:
    return f"""From: Feedback Loop <fbl@isp.example>
To: fbl@{BOUNCE_DOMAIN}
Date: {format_datetime(datetime.now(UTC))}
Subject: abuse report
Message-ID: <arf.{n}@isp.example>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="a{n}"

--a{n}
Content-Type: text/plain

An abuse report.

--a{n}
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: isp-fbl/1.0
Version: 1
Original-Mail-From: <{to}>
Original-Rcpt-To: <{address}>

--a{n}
Content-Type: text/rfc822-headers

Return-Path: <{to}>
To: {address}
Message-ID: {message_id}

--a{n}--
"""


def _mailto(n: int, to: str, address: str) -> str:
    return (
        f"From: {address}\nTo: {to}\nSubject: unsubscribe\nDate: {format_datetime(datetime.now(UTC))}\n"
        f"Message-ID: <unsub.{n}@example.com>\n\nunsubscribe\n"
    )


def _auto_reply(n: int, to: str, address: str, message_id: str) -> str:
    return (
        f"From: {address}\nTo: {to}\nSubject: Automatic reply: your newsletter\n"
        f"Date: {format_datetime(datetime.now(UTC))}\nAuto-Submitted: auto-replied\n"
        f"In-Reply-To: {message_id}\nMessage-ID: <ooo.{n}@example.com>\n\nI am out of the office.\n"
    )


def report(n: int, kind: str, delivery: tuple[int, str, str], signer) -> str:  # noqa: ANN001
    from segmail.feedback.tokens import TokenPurpose

    delivery_id, address, message_id = delivery
    verp = f"bounces+{signer.sign(TokenPurpose.BOUNCE, delivery_id)}@{BOUNCE_DOMAIN}"
    if kind == "hard":
        return _dsn(n, verp, address, message_id, "5.1.1", f"550 5.1.1 <{address}>: user unknown")
    if kind == "soft":
        return _dsn(n, verp, address, message_id, "4.2.2", "452 4.2.2 Mailbox full")
    if kind == "qmail":
        return _qmail(n, verp, address, message_id)
    if kind == "complaint":
        return _complaint(n, verp, address, message_id)
    if kind == "mailto":
        local, _, domain = MAILTO.partition("@")
        return _mailto(n, f"{local}+{signer.sign(TokenPurpose.UNSUBSCRIBE, delivery_id)}@{domain}", address)
    return _auto_reply(n, verp, address, message_id)


def kinds(n: int) -> list[str]:
    out: list[str] = []
    for share, kind in MIX:
        out += [kind] * round(n * share)
    return (out + ["hard"] * n)[:n]


def sent_deliveries(engine, n: int) -> list[tuple[int, str, str]]:  # noqa: ANN001
    """One newsletter run over the N contacts, every mail marked as accepted by the relay."""
    from segmail.mailings.audience import freeze_audience
    from segmail.mailings.definition import get_mailing
    from sqlalchemy import text

    run_id = freeze_audience(get_mailing("newsletter"), dag_run_id="bench", engine=engine)
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE segmail_deliveries SET status = 'sent', sent_at = :now, message_id = '<segmail.'"
                " || CAST(mailing_run_id AS VARCHAR(20)) || '.' || CAST(contact_id AS VARCHAR(20))"
                " || '@autohaus-demo.example>' WHERE mailing_run_id = :r"
            ),
            {"now": datetime.now(UTC), "r": run_id},
        )
        rows = conn.execute(
            text(
                "SELECT id, email, message_id FROM segmail_deliveries WHERE mailing_run_id = :r ORDER BY id"
            ),
            {"r": run_id},
        ).all()
    assert len(rows) == n, f"{len(rows)} deliveries for {n} contacts"
    return [tuple(r) for r in rows]


def fill_maildir(maildir: Path, deliveries: list, signer) -> int:  # noqa: ANN001
    """Write one report per delivery into the Maildir, as the delivery agent would; total bytes."""
    from segmail.dev.mailservers import MAILBOX_UID

    new = maildir / "new"
    for folder in ("new", "cur", "tmp"):
        (maildir / folder).mkdir(parents=True, exist_ok=True)
        os.chown(maildir / folder, MAILBOX_UID, MAILBOX_UID)
    os.chown(maildir, MAILBOX_UID, MAILBOX_UID)
    total = 0
    for n, (kind, delivery) in enumerate(zip(kinds(len(deliveries)), deliveries, strict=True)):
        data = report(n, kind, delivery, signer).encode()
        path = new / f"{int(time.time())}.M{n}P{os.getpid()}.bench"
        path.write_bytes(data)
        os.chown(path, MAILBOX_UID, MAILBOX_UID)
        total += len(data)
    return total


def raw_fetch(info) -> tuple[float, int]:  # noqa: ANN001
    """The baseline: every message's bytes over one IMAP connection, batches of 200."""
    from imapclient import IMAPClient

    with IMAPClient(info.host, port=info.port, ssl=False, timeout=60) as client:
        client.login(info.login, info.password)
        client.select_folder("INBOX", readonly=True)
        client.fetch(client.search("ALL"), [b"FLAGS"])  # warm-up: Dovecot indexes the new messages
        start = time.perf_counter()
        uids = sorted(client.search("ALL"))
        fetched = 0
        for i in range(0, len(uids), BATCH):
            fetched += len(client.fetch(uids[i : i + BATCH], [b"BODY.PEEK[]"]))
        return time.perf_counter() - start, fetched


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reports", type=int, default=10_000)
    parser.add_argument(
        "--db-url", default="", help="segmail database (default: SQLite in a temporary folder)"
    )
    args = parser.parse_args()

    from segmail.dev.mailservers import MailServers, missing

    if reason := missing():
        sys.exit(f"bench-feedback needs real Postfix and Dovecot: {reason}")
    work = Path(tempfile.mkdtemp(prefix="segmail-bench-feedback-"))
    os.environ.update(
        {
            "SEGMAIL_DB_URL": args.db_url or f"sqlite:///{work / 'bench.db'}",
            "SEGMAIL_BOUNCE_DOMAIN": BOUNCE_DOMAIN,
            "SEGMAIL_UNSUBSCRIBE_MAILTO": MAILTO,
            "AIRFLOW_CONN_SEGMAIL_SIGNING": json.dumps(
                {"conn_type": "generic", "password": secrets.token_hex(32)}
            ),
        }
    )
    try:
        with MailServers(feedback_domains=(BOUNCE_DOMAIN, "bench.example")) as servers:
            run(args.reports, servers)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(n: int, servers) -> None:  # noqa: ANN001
    from segmail.feedback.mailbox import ImapMailbox
    from segmail.feedback.process import FeedbackContext, process_mailbox
    from segmail.settings import ConnectionInfo
    from segmail.store.db import make_engine
    from segmail.store.migrate import upgrade

    engine = make_engine()
    upgrade(engine)
    seed_contacts(engine, n)
    context = FeedbackContext.from_settings()
    size = fill_maildir(servers.maildir, sent_deliveries(engine, n), context.signer)
    connection = servers.imap_connection()
    info = ConnectionInfo("segmail_bounces", **{k: v for k, v in connection.items() if k != "conn_type"})
    print(
        f"{n:,} reports ({size / n:,.0f} bytes on average) in Dovecot {servers.imap_port}; "
        f"database {engine.dialect.name}; cores {os.cpu_count()}; batches of {BATCH}",
        flush=True,
    )
    base_seconds, fetched = raw_fetch(info)
    assert fetched == n, f"fetched {fetched} of {n}"
    start = time.perf_counter()
    tally = process_mailbox(ImapMailbox(info), context=context, engine=engine, batch_size=BATCH)
    seconds = time.perf_counter() - start
    counts = tally.counts
    assert counts["messages"] == n and counts["already_processed"] == 0, counts

    rate, base_rate = n / seconds, n / base_seconds
    print(f"\n{'':<60} {'seconds':>8} {'reports/s':>10}")
    print(f"{'segmail: fetch, classify, verify, apply (1 tx each), move':<60} {seconds:>8.1f} {rate:>10,.0f}")
    print(
        f"{'baseline: raw IMAP FETCH BODY.PEEK[] of the same messages':<60} {base_seconds:>8.1f} {base_rate:>10,.0f}"
    )
    print(
        f"\nsegmail / baseline: {rate / base_rate:.1%}; "
        + ", ".join(f"{k} {v:,}" for k, v in counts.items() if v)
    )


if __name__ == "__main__":
    main()
