"""`make demo`'s SMS step: the sample SMS mailing through a private Kannel, with fakesmsc as the SMS
centre, delivery reports back through the public app, and a STOP from a phone.

Without Kannel (Debian's `kannel` and `kannel-extras`) it says how to get it, in one line.
"""

from __future__ import annotations

import json
import os
import time
import urllib.request

from sqlalchemy import text

from segmail.dev.processes import Children

SLUG = "sms_service_reminder"
WAIT_SECONDS = 15


def _print(line: str) -> None:
    print(line, flush=True)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=2) as answer:
            return answer.status == 200
    except OSError:
        return False


def _public_app(children: Children) -> str | None:
    """The public app the reports go to: one already running (`make serve-public`), else our own."""
    from segmail import settings
    from segmail.dev.local import start_public_app

    url = settings.current().public_url
    if not url or _answers(url):
        return url
    try:
        start_public_app(children)
    except SystemExit as exc:  # its port is taken by something else: send without reports
        _print(f"no delivery reports: {exc}")
        return None
    return url


def _counts(run_id: int) -> dict[str, int]:
    from segmail.store.db import default_engine

    with default_engine().connect() as conn:
        rows = conn.execute(
            text("SELECT status, COUNT(*) FROM segmail_deliveries WHERE mailing_run_id = :r GROUP BY status"),
            {"r": run_id},
        ).all()
    return dict(rows)


def _wait(condition, seconds: float = WAIT_SECONDS) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _stop_from(kannel, number: str) -> None:  # noqa: ANN001
    from segmail.store.db import default_engine

    kannel.inject_mo(sender=number, text="STOP")

    def opted_out() -> bool:
        with default_engine().connect() as conn:
            sql = "SELECT COUNT(*) FROM segmail_contacts WHERE mobile_e164 = :n AND sms_opt_out"
            return bool(conn.execute(text(sql), {"n": number}).scalar_one())

    done = _wait(opted_out)
    _print(f"STOP from {number}: {'opted out of SMS (the next run skips it)' if done else 'not seen yet'}")


def _broadcast(kannel, *, reports: bool) -> bool:  # noqa: ANN001
    from segmail.dev.demo import run_dag

    os.environ["AIRFLOW_CONN_SMS_DEFAULT"] = json.dumps(kannel.connection())
    run = run_dag(f"mailing__{SLUG}", {})
    _print(f"mailing__{SLUG} run {run.run_id}: {run.state}")
    freeze = next(ti for ti in run.get_task_instances() if ti.task_id == "freeze_audience")
    run_id = freeze.xcom_pull(task_ids="freeze_audience")
    sent = sum(n for status, n in _counts(run_id).items() if status not in ("skipped", "failed", "pending"))
    _wait(lambda: len(kannel.received()) >= sent)
    for sms in kannel.received():
        _print(
            f"  fakesmsc got, to {sms.to} from {sms.sender} ({sms.encoding}, {sms.parts} part(s)): {sms.text}"
        )
    if reports:
        _wait(lambda: _counts(run_id).get("sent", 0) == 0)
    _print(f"statuses of run {run_id}: {json.dumps(_counts(run_id), sort_keys=True)}")
    if reports and kannel.received():
        _stop_from(kannel, kannel.received()[0].to)
    return run.state == "success"


def sms_broadcast() -> bool:
    """The demo's SMS step; False when the broadcast's DAG run failed."""
    from segmail.dev.smsgateway import LocalKannel, missing
    from segmail.sms.reports import inbound_url

    reason = missing()
    if reason:
        _print(
            "\nSMS: skipped, Kannel is not installed (apt-get install kannel kannel-extras, or run "
            "`make test` as root once): `make demo` then also sends an SMS broadcast through it."
        )
        return True
    _print(f"\n==> SMS broadcast (mailing__{SLUG}) through a private Kannel, fakesmsc as the SMS centre")
    children = Children()
    try:
        public = _public_app(children)
        with LocalKannel(inbound_url=inbound_url() if public else None) as kannel:
            return _broadcast(kannel, reports=public is not None)
    finally:
        children.stop()
