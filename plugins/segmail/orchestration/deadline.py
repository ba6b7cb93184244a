"""The deadline alert of a mailing DAG (`deadline_hours`): Airflow's DeadlineAlert, counted from the
run's logical date (a scheduled run's time), fires when the DAG run has not finished by then.

Airflow keeps the deadline with the DAG run, drops it when the run finishes, and on a miss runs
`alert_late_run` in the triggerer with a small context (the DAG run and the deadline). The alert is
logged there and e-mailed, through the SMTP provider's notifier, to the mailing's `notify` addresses,
else to its responsible salesperson. Runs without a logical date (manual triggers that give none,
asset-triggered runs) have nothing to count from and get no deadline.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from html import escape

from airflow.sdk import DeadlineAlert, DeadlineReference
from airflow.sdk.definitions.callback import AsyncCallback

from segmail.mailings.definition import Mailing

log = logging.getLogger(__name__)


def deadline_alert(mailing: Mailing) -> DeadlineAlert | None:
    """The DAG's DeadlineAlert, or None when the mailing sets no `deadline_hours`."""
    if not mailing.deadline_hours:
        return None
    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_LOGICAL_DATE,
        interval=timedelta(hours=mailing.deadline_hours),
        callback=AsyncCallback(
            alert_late_run,
            kwargs={"mailing": mailing.slug, "hours": mailing.deadline_hours, "to": list(mailing.notify)},
        ),
        name=f"{mailing.slug} not finished {mailing.deadline_hours:g} h after its time",
    )


def _recipients(slug: str, to: list[str]) -> list[str]:
    if to:
        return to
    from segmail.errors import SegmailError
    from segmail.mailings import definition, testmail

    try:
        return [testmail.responsible_salesperson(definition.get_mailing(slug))["email"]]
    except SegmailError as exc:
        log.warning("late-run alert of %s not e-mailed: %s", slug, exc)
        return []


def alert_message(*, mailing: str, hours: float, context: dict) -> tuple[str, str]:
    """(subject, HTML) of the alert, from the context Airflow passes to deadline callbacks."""
    dag_run = context.get("dag_run") or {}
    deadline = context.get("deadline") or {}
    run_id = dag_run.get("dag_run_id") or dag_run.get("run_id") or "?"
    subject = f"[segmail] Mailing {mailing} not finished {hours:g} h after its scheduled time"
    html = (
        f"<p>The run <code>{escape(str(run_id))}</code> of <code>mailing__{escape(mailing)}</code>, scheduled"
        f" for {escape(str(dag_run.get('logical_date', '?')))}, had not finished by"
        f" {escape(str(deadline.get('deadline_time', '?')))} (state: {escape(str(dag_run.get('state', '?')))}).</p>"
        "<p>It may be waiting for an approval, for its send window or for SMTP capacity.</p>"
    )
    return subject, html


async def alert_late_run(*, mailing: str, hours: float, to: list[str], context: dict | None = None) -> str:
    """Log the missed deadline and e-mail it; runs in the triggerer (Airflow's AsyncCallback)."""
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    from segmail import settings

    subject, html = alert_message(mailing=mailing, hours=hours, context=context or {})
    log.warning("%s", subject)
    recipients = await asyncio.to_thread(_recipients, mailing, to)
    if not recipients:
        return subject
    config = settings.current()
    notifier = SmtpNotifier(
        to=recipients,
        from_email=config.notify_from,
        subject=subject,
        html_content=html,
        smtp_conn_id=config.smtp_conn_id,
    )
    await asyncio.to_thread(notifier.notify, {})
    return subject
