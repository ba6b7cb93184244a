"""The crash window: a send task killed with SIGKILL mid-batch, then retried in a fresh process.

A real task process (`send_batch` over `SmtpHookTransport`, as the DAG's task calls it) sends to a
real SMTP server that takes its time before accepting each mail; the test kills the process while
the server holds a mail it has kept but not yet answered, runs the retry in a new process, and
counts what the server received: every recipient exactly once, except at most one per open
connection twice (the mail in flight at the kill), with the same Message-ID both times. Nothing is
lost, and the database ends with every mail `sent` and one activity line each.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
from segmail.mailings.audience import freeze_audience
from segmail.mailings.definition import get_mailing
from segmail.mailings.deliveries import plan_batches
from sqlalchemy import text

CONTACTS = 12
KILL_AFTER = 5  # mails received by the server
TASK = """
import sys
from segmail.mailings.definition import get_mailing
from segmail.mailings.send import send_batch
from segmail.mailings.transport import SmtpHookTransport

batch_id, connections = int(sys.argv[1]), int(sys.argv[2])
transport = SmtpHookTransport("smtp_default", connections=connections)
print(send_batch(batch_id, mailing=get_mailing("newsletter"), transport=transport).as_dict(), flush=True)
"""


@pytest.fixture
def audience(engine, write_csv):
    from segmail.contacts import salespeople, segments
    from segmail.imports.pipeline import import_file

    salespeople.add_salesperson(code="MB", name="Maria Berger", email="maria@example.com", engine=engine)
    segments.create_segment(name="Newsletter", salesperson="MB", engine=engine)
    rows = "".join(f"K{i},DE,Kim,Nr{i},kim.{i}@example.com,en,Newsletter\n" for i in range(CONTACTS))
    path = write_csv("External ID,Country Code,First Name,Last Name,Email,Language,Segments\n" + rows)
    assert import_file(path, engine=engine).created == CONTACTS
    return engine


def start_task(batch_id: int, connections: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", TASK, str(batch_id), str(connections)],
        env=os.environ.copy(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(condition, *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.002)


@pytest.mark.parametrize(
    "connections", [pytest.param(1, id="one-connection"), pytest.param(2, id="two-connections")]
)
def test_a_killed_send_task_sends_at_most_the_mail_in_flight_twice_and_loses_none(
    audience, smtp_sink, connections
):
    engine = audience
    mailing = get_mailing("newsletter")
    run_id = freeze_audience(mailing, dag_run_id="crash", engine=engine)
    (batch,) = plan_batches(run_id, batch_size=500, engine=engine)
    smtp_sink.handler.data_delay = 0.3  # each mail is kept, then answered 0.3 s later

    task = start_task(batch["batch_id"], connections)
    wait_for(
        lambda: len(smtp_sink.messages) >= KILL_AFTER or task.poll() is not None, timeout=120, what="mails"
    )
    task.send_signal(signal.SIGKILL)  # as the OOM killer would: no finally, no flush
    task.wait()
    assert task.returncode == -signal.SIGKILL, task.stderr.read()[-3000:]
    received_before = len(smtp_sink.messages)
    assert KILL_AFTER <= received_before < CONTACTS  # killed mid-batch

    smtp_sink.handler.data_delay = 0.0
    retry = start_task(batch["batch_id"], connections)
    out, err = retry.communicate(timeout=120)
    assert retry.returncode == 0, err[-3000:]

    per_recipient = Counter(r for message in smtp_sink.messages for r in message.recipients)
    assert sorted(per_recipient) == sorted(f"kim.{i}@example.com" for i in range(CONTACTS))  # none lost
    twice = {r for r, n in per_recipient.items() if n > 1}
    assert max(per_recipient.values()) <= 2
    assert 1 <= len(twice) <= connections  # the mail(s) in flight at the kill, and no other
    for recipient in twice:
        ids = {m.parsed()["Message-ID"] for m in smtp_sink.messages if recipient in m.recipients}
        assert len(ids) == 1  # the duplicate carries the same Message-ID

    with engine.connect() as conn:
        statuses = conn.execute(
            text("SELECT status, COUNT(*) FROM segmail_deliveries WHERE mailing_run_id = :r GROUP BY status"),
            {"r": run_id},
        ).all()
        activity = conn.execute(
            text("SELECT COUNT(*) FROM segmail_activity_log WHERE mailing_run_id = :r"), {"r": run_id}
        ).scalar_one()
    assert dict(statuses) == {"sent": CONTACTS}
    assert activity == CONTACTS
