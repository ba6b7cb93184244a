"""Helpers of the SMS tests: the private Kannel (bearerbox, smsbox, fakesmsc) of a test session, the
public app on the port Kannel calls back, and what the database holds afterwards.

Kannel's inbound get-url is written into its configuration when it starts, so the session fixes
the public app's port and each test serves the app for its own database on that port. Delivery
ids start again in every test's database: a test waits for the reports of what it sent before it
ends, so none reaches the next test's app.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from segmail.dev.smtpsink import free_port
from segmail.sms.reports import inbound_url
from sqlalchemy import Engine, bindparam, text
from tests_support import TEST_SIGNING_KEY


class SmsLab:
    """The session's Kannel and the port its callbacks go to."""

    def __init__(self, kannel, public_port: int) -> None:  # noqa: ANN001 (LocalKannel, imported late)
        self.kannel = kannel
        self.public_port = public_port

    @property
    def public_url(self) -> str:
        return f"http://127.0.0.1:{self.public_port}"

    @contextmanager
    def serving(self, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
        """The public app on the fixed port for `engine`; sending and report URLs point at it."""
        from feedback_support import serve_public_app

        monkeypatch.setenv("SEGMAIL_PUBLIC_URL", self.public_url)
        monkeypatch.setenv("AIRFLOW_CONN_SMS_DEFAULT", json.dumps(self.kannel.connection()))
        with serve_public_app(engine, port=self.public_port) as url:
            yield url


@contextmanager
def sms_lab() -> Iterator[SmsLab]:
    """A private Kannel whose inbound messages go to the public app's port; fails under CI=true
    when Kannel is missing, skips elsewhere."""
    from segmail.dev.smsgateway import LocalKannel, missing

    reason = missing()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    port = free_port()
    inbound = inbound_url(public_url=f"http://127.0.0.1:{port}", keys=(TEST_SIGNING_KEY,))
    with LocalKannel(inbound_url=inbound) as kannel:
        yield SmsLab(kannel, port)


def wait_for(read, *, until=bool, timeout: float = 30, what: str = "condition"):  # noqa: ANN001, ANN201
    """Call `read()` until `until(value)` holds; that value."""
    deadline = time.monotonic() + timeout
    while not until(value := read()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}: {value!r}")
        time.sleep(0.05)
    return value


def statuses(engine: Engine, run_id: int) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT status, COUNT(*) FROM segmail_deliveries WHERE mailing_run_id = :r GROUP BY status"),
            {"r": run_id},
        ).all()
    return {status: count for status, count in rows}


def sms_opt_outs(engine: Engine) -> dict[str, tuple]:
    """external id -> (opted out, source, run) of every contact."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT external_id, sms_opt_out, sms_opt_out_source, sms_opt_out_run_id, email_opt_out"
                " FROM segmail_contacts ORDER BY external_id"
            )
        ).all()
    return {r[0]: (bool(r[1]), r[2], r[3], bool(r[4])) for r in rows}


def activity_kinds(engine: Engine, kind: str) -> list[tuple]:
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                text(
                    "SELECT contact_id, mailing_run_id, detail FROM segmail_activity_log"
                    " WHERE kind = :k ORDER BY contact_id"
                ),
                {"k": kind},
            )
        ]


def sms_run(engine: Engine, numbers: list[str], *, status: str = "sent") -> tuple[int, list[int]]:
    """An SMS run with one contact and one delivery per number, the messages already `sent`
    (as the send path leaves them): (run id, delivery ids)."""
    from datetime import UTC, datetime

    from segmail.store.models import Contact, Delivery, MailingRun
    from sqlalchemy.orm import Session

    now = datetime.now(UTC)
    with Session(engine) as session, session.begin():
        run = MailingRun(
            mailing="reminder",
            dag_run_id=f"gateway-{time.monotonic_ns()}",
            status="sending",
            dry_run=False,
            created_at=now,
            channel="sms",
        )
        session.add(run)
        session.flush()
        first_id = session.execute(text("SELECT COALESCE(MAX(id), 0) FROM segmail_contacts")).scalar_one()
        deliveries = []
        for offset, number in enumerate(numbers, start=1):
            contact = Contact(
                id=first_id + offset,
                external_id=f"G{first_id + offset}",
                country_code="AT",
                mobile_e164=number,
                first_name="Gerda",
                last_name=f"Gateway{offset}",
                created_at=now,
                updated_at=now,
            )
            session.add(contact)
            deliveries.append(
                Delivery(
                    mailing_run_id=run.id,
                    contact_id=contact.id,
                    mobile_e164=number,
                    language="de",
                    status=status,
                    attempts=1,
                    updated_at=now,
                )
            )
        session.add_all(deliveries)
        session.flush()
        return run.id, [d.id for d in deliveries]


def delivery_rows(engine: Engine, ids: list[int]) -> dict[int, tuple]:
    """delivery id -> (status, reason, reported_at is set)."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT id, status, reason, reported_at FROM segmail_deliveries WHERE id IN :ids"
            ).bindparams(bindparam("ids", expanding=True)),
            {"ids": ids},
        ).all()
    return {r[0]: (r[1], r[2], r[3] is not None) for r in rows}
