"""Builds one `mailing__<slug>` DAG per mailing file. Imported by dags/mailings.py at parse time,
so it only reads the small YAML definitions: no database, no templates, no SMTP. The tasks call
`segmail.orchestration.tasks`; the run's monitoring page is attached to each DAG run by the plugin
(an `external_views` entry with `destination: "dag_run"`).

A broken definition never hides the valid ones: `build_mailing_dags` skips it, and
dags/mailing_definition_errors.py calls `raise_definition_errors`, so it shows as that file's
import error in the Airflow UI, naming the YAML file and the field."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, Asset, CronTriggerTimetable, Param, task

from segmail import settings
from segmail.mailings.definition import Mailing, load_mailings
from segmail.orchestration.assets import CONTACTS_ASSET
from segmail.orchestration.deadline import deadline_alert
from segmail.orchestration.operators import SendBatchOperator
from segmail.store.models import Channel


def _schedule(mailing: Mailing) -> list[Asset] | CronTriggerTimetable | None:
    """A cron schedule runs at the mailing's local wall-clock time, across daylight-saving changes."""
    if mailing.schedule == "after_import":
        return [CONTACTS_ASSET]
    if not mailing.schedule:
        return None
    return CronTriggerTimetable(mailing.schedule, timezone=mailing.timezone)


def _channel_doc(mailing: Mailing) -> str:
    if mailing.channel != Channel.SMS:
        return ""
    return (
        "Channel: **SMS** to each contact's mobile (one message per number), through the gateway"
        f" connection `{mailing.gateway_conn_id}`, in the `{settings.current().sms_pool}` pool.\n\n"
    )


def _doc(mailing: Mailing) -> str:
    audience = mailing.audience
    excluded = f", except **{', '.join(audience.exclude_segments)}**" if audience.exclude_segments else ""
    return (
        f"### {mailing.name}\n\n{mailing.description}\n\n"
        f"Audience: contacts in any of **{', '.join(audience.segments)}**{excluded}"
        f". Languages: {', '.join(mailing.variants)} (default {mailing.default_language}).\n\n"
        f"{_channel_doc(mailing)}"
        f"{_approval_doc(mailing)}"
        f"{_sending_doc(mailing)}Defined in `include/mailings/{mailing.slug}.yaml`."
    )


def _approval_doc(mailing: Mailing) -> str:
    approval = mailing.approval
    if not approval.required:
        return "Scheduled runs are silent; a manual trigger shows a form for a dry run, the languages and a cap.\n"
    who = ", ".join(approval.approvers) or "any user allowed to act on this DAG"
    return (
        f"Every run waits for approval in **Required Actions** ({who}; after {approval.timeout_hours:g} h:"
        f" {approval.on_timeout}), where the languages and a recipient cap can still be narrowed.\n"
    )


def _sending_doc(mailing: Mailing) -> str:
    """Time zone, send window and caps, when the mailing has any."""
    from segmail.throttle.gate import mailing_caps

    parts = [f"times in **{mailing.timezone}**"] if mailing.timezone != "UTC" else []
    if mailing.send_window is not None:
        parts.append(f"sends {mailing.send_window.describe()} (batches outside wait deferred)")
    caps = [f"{cap.limit} per {cap.period}" for cap in mailing_caps(mailing)]
    if caps:
        parts.append("at most " + " and ".join(caps))
    text = "; ".join(parts)
    return f"{text[:1].upper()}{text[1:]}.\n" if parts else ""


def _params(mailing: Mailing) -> dict:
    return {
        "dry_run": Param(False, type="boolean", description="Render every mail, send none."),
        "languages": Param(
            list(mailing.variants),
            type="array",
            items={"type": "string", "enum": list(mailing.variants)},
            description="Languages to include.",
        ),
        "max_recipients": Param(0, type="integer", minimum=0, description="0 = everyone."),
    }


def build_mailing_dag(mailing: Mailing) -> DAG:
    slug = mailing.slug
    with DAG(
        dag_id=mailing.dag_id,
        description=mailing.name,
        schedule=_schedule(mailing),
        start_date=datetime(2026, 1, 1),
        catchup=False,
        max_active_runs=1,
        doc_md=_doc(mailing),
        tags=["segmail", "mailing"],
        default_args={
            "retries": 3,
            "retry_delay": timedelta(seconds=20),
            "retry_exponential_backoff": True,
            "max_retry_delay": timedelta(minutes=10),
        },
        params=_params(mailing),
        deadline=deadline_alert(mailing),
    ) as dag:

        @task
        def freeze_audience(params: dict, run_id: str, dag_run=None) -> int:
            """Fix the audience: one delivery row per contact, skipped ones with their reason."""
            from segmail.orchestration import tasks

            return tasks.freeze_audience(slug, params=params, run_id=run_id, dag_run=dag_run)

        @task
        def plan_batches(mailing_run_id: int) -> list[dict]:
            from segmail.orchestration import tasks

            return tasks.plan_batches(slug, mailing_run_id)

        # A batch over the mailing's SMTP connections (an SMS mailing's: its gateway, in the `sms`
        # pool); pending mails after a 4xx, a drop or a busy gateway make the task retry; outside
        # the send window or over a cap it waits deferred (operators.py).
        send_batch = SendBatchOperator.partial(
            task_id="send_batch",
            slug=slug,
            pool=_send_pool(mailing),
            map_index_template="{{ batch['label'] }}",
        )

        @task(trigger_rule="all_done", retries=0)
        def summarize(mailing_run_id: int) -> dict:
            """Totals per status and language; the run turns red past the failure threshold."""
            from segmail.orchestration import tasks

            return tasks.summarize_mailing(slug, mailing_run_id)

        run = freeze_audience()
        batches = plan_batches(run)
        if mailing.approval.required:  # "dialog on": ask in Required Actions before batches exist
            run >> _approval_task(mailing) >> batches
        send_batch.expand(batch=batches) >> summarize(run)
    return dag


def _send_pool(mailing: Mailing) -> str:
    """SMS batches in their own pool: a gateway's limits are not an SMTP server's."""
    config = settings.current()
    return config.sms_pool if mailing.channel == Channel.SMS else config.smtp_pool


def _approval_task(mailing: Mailing):  # noqa: ANN202 (an operator; its import stays out of plain DAGs)
    from segmail.orchestration.approval import MailingApprovalOperator

    return MailingApprovalOperator(mailing=mailing)


def build_mailing_dags() -> dict[str, DAG]:
    """A DAG per valid mailing definition, by dag_id; broken files are left to `raise_definition_errors`."""
    mailings, _errors = load_mailings()
    return {mailing.dag_id: build_mailing_dag(mailing) for mailing in mailings.values()}


def raise_definition_errors() -> None:
    """Raise, naming every broken file and field, when a mailing definition cannot be loaded."""
    _mailings, errors = load_mailings()
    if errors:
        raise ValueError("invalid mailing definition(s): " + " | ".join(errors.values()))
