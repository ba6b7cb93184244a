"""What the tasks of the DAG files call: each task is one or two calls into this module.

Imported inside task bodies only, never at a DAG file's top level, so parsing stays light. The first
task of every DAG checks that segmail's schema is at head (migrations run at deploy time, not in
tasks). A `SegmailError` is the user's to fix, so `fail_task_on_user_error` fails the task at once,
without retries, with the error's one-line message instead of a traceback. XCom carries references
(paths, run and batch ids) and small summaries, never contact rows.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

from segmail.errors import SegmailError


@contextlib.contextmanager
def fail_task_on_user_error() -> Iterator[None]:
    """Turn a SegmailError into AirflowFailException: a retry cannot fix the user's mistake."""
    try:
        yield
    except SegmailError as exc:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(str(exc)) from None


def require_schema() -> None:
    """Fail with `segmail db upgrade` as the instruction when the schema is not at head."""
    from segmail.store import migrate

    with fail_task_on_user_error():
        migrate.require_head()


def _as_list(results: Sequence[Any] | None) -> list:
    """A mapped task's lazy XCom sequence as a list. Indexed by length: iterating one probes one
    past the end and logs an error."""
    return [results[i] for i in range(len(results))] if results else []


# ---------------------------------------------------------------- contacts_import


def find_inbox_files(inbox: str) -> list[str]:
    """The files waiting in the inbox (the given location, else the configured one)."""
    from segmail.imports import inbox as inboxes

    require_schema()
    return inboxes.list_inbox(inbox or None)


def import_inbox_file(path: str, *, mode: str, run_id: str) -> dict:
    """Import one inbox file; the task's map index shows the file name."""
    from airflow.sdk import get_current_context

    from segmail.imports import inbox

    get_current_context()["file_name"] = path.rsplit("/", 1)[-1]
    return inbox.import_inbox_file(path, mode=mode, source=f"dag:{run_id}")


def import_totals(results: Sequence[dict] | None) -> dict:
    """Totals over the run's files; skips the task (no Asset event) when no file was imported."""
    from airflow.sdk.exceptions import AirflowSkipException

    from segmail.imports import inbox

    totals = inbox.summarize(_as_list(results))
    if not totals["imported_files"]:
        raise AirflowSkipException(f"no file imported: {totals}")
    return totals


def notify_import(*, to: str, totals: dict) -> None:
    """The completion notice, when the trigger form asked for one."""
    if to:
        from segmail.orchestration.notify import send_import_notice

        send_import_notice(to=to, totals=totals)


def fail_on_rejected_files(results: Sequence[dict] | None) -> None:
    """Turn the run red when a whole file was rejected, after the good files have landed."""
    from airflow.sdk.exceptions import AirflowFailException

    from segmail.store.models import ImportStatus

    rejected = [
        f"{r['file_name']}: {r['error']}"
        for r in _as_list(results)
        if r.get("status") == ImportStatus.REJECTED
    ]
    if rejected:
        raise AirflowFailException("rejected files (moved to rejected/):\n" + "\n".join(rejected))


# ---------------------------------------------------------------- segments_admin


def run_admin_action(params: dict) -> dict:
    """One action of the trigger form, in one transaction; a mistake fails with the reason."""
    from segmail.orchestration import admin_actions

    require_schema()
    with fail_task_on_user_error():
        return admin_actions.run_action(**dict(params))


# ---------------------------------------------------------------- mailing__<slug>


def freeze_audience(slug: str, *, params: dict, run_id: str, dag_run: Any = None) -> int:
    """Fix the audience of this run; a scheduled run that starts too late is skipped, sending nothing.
    A DAG run for the logical date of an earlier, deleted one carries that mailing run on."""
    from datetime import UTC, datetime

    from airflow.sdk.exceptions import AirflowSkipException

    from segmail.mailings import audience, definition
    from segmail.orchestration import skipped_runs

    require_schema()
    mailing = definition.get_mailing(slug)
    if dag_run is not None and dag_run.run_type == "scheduled":
        now = datetime.now(UTC).replace(microsecond=0)  # the reason says "2:00:01 later", no microseconds
        reason = mailing.too_late(scheduled_for=dag_run.run_after, now=now)
        if reason:
            skipped_runs.record(slug, dag_run_id=run_id, reason=reason)  # shown on the pages
            raise AirflowSkipException(reason)
    skipped_runs.forget(slug, dag_run_id=run_id)
    languages = params["languages"] if set(params["languages"]) != set(mailing.variants) else None
    return audience.freeze_audience(
        mailing,
        dag_run_id=run_id,
        logical_date=dag_run.logical_date if dag_run is not None else None,  # a scheduled interval
        dry_run=params["dry_run"],
        languages=languages,
        max_recipients=params["max_recipients"] or None,
        # Without an approval nothing narrows the run before it is sent: its batches are planned now.
        batch_size=None if mailing.approval.required else mailing.batch_size,
    )


def plan_batches(slug: str, mailing_run_id: int) -> list[dict]:
    from segmail.mailings import definition, deliveries

    mailing = definition.get_mailing(slug)
    return deliveries.plan_batches(mailing_run_id, batch_size=mailing.batch_size)


def _final_try() -> bool:
    from airflow.sdk import get_current_context

    ti = get_current_context()["ti"]
    return ti.try_number > ti.max_tries


def send_batch(slug: str, batch: dict) -> dict:
    """Send one batch over the mailing's SMTP connections; pending mails after a 4xx or a drop make
    the task retry. Outside the send window or over a cap the result has `wait_until`, and the
    operator defers until then."""
    from segmail.mailings import definition, send
    from segmail.mailings.transport import SmtpHookTransport
    from segmail.store.models import Channel
    from segmail.throttle.gate import gate_for

    mailing = definition.get_mailing(slug)
    if mailing.channel == Channel.SMS:  # through the SMS gateway (the same operator, in the `sms` pool)
        return send_sms_batch(slug, batch, mailing=mailing)
    transport = SmtpHookTransport(mailing.smtp_conn_id, connections=mailing.smtp_connections)
    with fail_task_on_user_error():  # a bad cap in the connection's extra
        gate = gate_for(mailing, connection_id=mailing.smtp_conn_id, connections=mailing.smtp_connections)
    return send.send_batch(
        batch["batch_id"], mailing=mailing, transport=transport, final_try=_final_try(), gate=gate
    ).as_dict()


def send_sms_batch(slug: str, batch: dict, *, mailing: Any = None) -> dict:
    """Send one batch of an SMS mailing through its gateway connection; messages left pending by a
    busy or unreachable gateway make the task retry. Outside the send window or over a cap the
    result has `wait_until`, and the operator defers until then."""
    from segmail.mailings import definition
    from segmail.sms import kannel, send
    from segmail.sms.render import compile_sms
    from segmail.sms.reports import ReportUrls
    from segmail.throttle.gate import ConnectionKind, gate_for

    mailing = mailing or definition.get_mailing(slug)
    with fail_task_on_user_error():  # no sender or signing key, a broken template
        for language in mailing.variants:
            compile_sms(mailing, language)
        report_urls = ReportUrls()

    def open_gateway() -> Any:  # read only when the batch really sends: a dry run needs no gateway
        with fail_task_on_user_error():  # no gateway connection
            return kannel.gateway_for(mailing.gateway_conn_id)

    def open_gate() -> Any:
        with fail_task_on_user_error():  # a bad cap in the connection's extra
            return gate_for(
                mailing, connection_id=mailing.gateway_conn_id, connection_kind=ConnectionKind.SMS
            )

    return send.send_sms_batch(
        batch["batch_id"],
        mailing=mailing,
        open_gateway=open_gateway,
        open_gate=open_gate,
        final_try=_final_try(),
        report_url=report_urls,
    ).as_dict()


def summarize_mailing(slug: str, mailing_run_id: int) -> dict:
    """Totals per status and language; the run turns red past the failure threshold."""
    from segmail.mailings import definition, summary

    with fail_task_on_user_error():
        return summary.summarize_run(mailing_run_id, mailing=definition.get_mailing(slug))


def _approval_recipients(mailing: Any) -> list[str]:
    """The mailing's `notify` addresses, else its responsible salesperson (the test mail's recipient)."""
    import logging

    from segmail.mailings import testmail

    if mailing.notify:
        return list(mailing.notify)
    try:
        return [testmail.responsible_salesperson(mailing)["email"]]
    except SegmailError as exc:
        logging.getLogger(__name__).warning("approval request of %s not e-mailed: %s", mailing.slug, exc)
        return []


def approval_request(slug: str, *, mailing_run_id: int) -> dict:
    """The approval request of a frozen run: Markdown for Required Actions, HTML for the e-mail, the
    form's languages (those of the run) and who is told."""
    from dataclasses import replace

    from markdown_it import MarkdownIt

    from segmail import settings
    from segmail.mailings import approval, definition
    from segmail.orchestration import links

    mailing = definition.get_mailing(slug)
    url = links.preview_url(slug=slug, mailing_run_id=mailing_run_id)
    facts = approval.run_facts(mailing, mailing_run_id, preview_url=url)
    approval.record_request(mailing_run_id, approvers=mailing.approval.approvers)
    absolute = replace(
        facts, preview_url=links.preview_url(slug=slug, mailing_run_id=mailing_run_id, absolute=True)
    )
    in_run = [lang for lang in mailing.variants if lang in facts.to_send]
    return {
        "body": approval.request_body(mailing, facts),
        "html": MarkdownIt("commonmark").enable("table").render(approval.request_body(mailing, absolute)),
        "variants": list(mailing.variants),
        "languages": in_run or list(mailing.variants),
        "notify": _approval_recipients(mailing),
        "from_email": settings.current().notify_from,
        "smtp_conn_id": settings.current().smtp_conn_id,
    }


def apply_approval(slug: str, *, mailing_run_id: int, event: dict, timeout_hours: float) -> dict:
    """Apply a Required Actions answer (or the timeout's defaults) to the frozen run."""
    from segmail.mailings import approval

    user = event.get("responded_by_user") or {}
    chosen = event.get("chosen_options") or []
    params = event.get("params_input") or {}
    answer = approval.Answer(
        approved=chosen == [approval.APPROVE],
        decided_by=user.get("name") or user.get("id"),
        timed_out=bool(event.get("timedout")) or not user,
        languages=params.get("languages"),
        max_recipients=int(params.get("max_recipients") or 0) or None,
        timeout_hours=timeout_hours,
    )
    return dict(approval.decide(mailing_run_id, answer))


# ---------------------------------------------------------------- mailing_test_mail


def send_test_mail(params: dict, run_id: str) -> list[dict]:
    """The test mails of one mailing to its salesperson (or the given recipient); nothing on contacts."""
    from segmail.mailings import definition, testmail
    from segmail.mailings.transport import SmtpHookTransport

    require_schema()
    with fail_task_on_user_error():
        mailing = definition.get_mailing(params["mailing"])
        if mailing.channel == "sms":  # to the salesperson's mobile, through the mailing's gateway
            from segmail.sms import kannel
            from segmail.sms.testmail import send_test_sms

            return send_test_sms(
                mailing,
                gateway=kannel.gateway_for(mailing.gateway_conn_id),
                language=params["language"],
                contact_key=params["contact"] or None,
                recipient=params["recipient"] or None,
                dag_run_id=run_id,
            )
        return testmail.send_test_mails(
            mailing,
            transport=SmtpHookTransport(mailing.smtp_conn_id),
            language=params["language"],
            contact_key=params["contact"] or None,
            recipient=params["recipient"] or None,
            dag_run_id=run_id,
        )


# ---------------------------------------------------------------- mail_feedback


def read_feedback_mailbox() -> dict:
    """Read the bounce mailbox in bounded batches and apply every report; counts cross XCom.
    Skips (saying how to configure it) when no mailbox is configured."""
    from airflow.sdk.exceptions import AirflowSkipException

    from segmail.feedback import process
    from segmail.feedback.mailbox import MailboxNotConfigured

    require_schema()
    with fail_task_on_user_error():
        try:
            return process.read_feedback()
        except MailboxNotConfigured as exc:  # nothing is wrong: there is nothing to read yet
            raise AirflowSkipException(str(exc)) from None


def summarize_feedback(counts: dict) -> str:
    """The counts per class; the run turns red when a mailing run crossed a rate limit."""
    from segmail.feedback import process

    with fail_task_on_user_error():
        return process.summarize_feedback(counts)
