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
    the task retry."""
    from segmail.mailings import definition, send
    from segmail.mailings.transport import SmtpHookTransport

    mailing = definition.get_mailing(slug)
    transport = SmtpHookTransport(mailing.smtp_conn_id, connections=mailing.smtp_connections)
    return send.send_batch(
        batch["batch_id"], mailing=mailing, transport=transport, final_try=_final_try()
    ).as_dict()


def summarize_mailing(slug: str, mailing_run_id: int) -> dict:
    """Totals per status and language; the run turns red past the failure threshold."""
    from segmail.mailings import definition, summary

    with fail_task_on_user_error():
        return summary.summarize_run(mailing_run_id, mailing=definition.get_mailing(slug))


# ---------------------------------------------------------------- mailing_test_mail


def send_test_mail(params: dict, run_id: str) -> list[dict]:
    """The test mails of one mailing to its salesperson (or the given recipient); nothing on contacts."""
    from segmail.mailings import definition, testmail
    from segmail.mailings.transport import SmtpHookTransport

    require_schema()
    with fail_task_on_user_error():
        mailing = definition.get_mailing(params["mailing"])
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
