"""Builds one `mailing__<slug>` DAG per mailing file. Imported by dags/definition.py at parse time,
so it only reads the small YAML definitions: no database, no templates, no SMTP."""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.providers.standard.decorators.python import _PythonDecoratedOperator
from airflow.sdk import DAG, Param, task
from airflow.sdk.bases.decorator import task_decorator_factory

from segmail.mailings.definition import Mailing
from segmail.orchestration.assets import CONTACTS_ASSET
from segmail.orchestration.links import MailingRunLink

SMTP_POOL = os.environ.get("SEGMAIL_SMTP_POOL", "smtp")


class _SendBatchOperator(_PythonDecoratedOperator):
    """`@task` with the extra link to the run's page (Airflow pushes links declared on the class)."""

    operator_extra_links = (MailingRunLink(),)


def send_batch_task(**kwargs):  # noqa: ANN201 - a task decorator
    return task_decorator_factory(decorated_operator_class=_SendBatchOperator, **kwargs)


def _schedule(mailing: Mailing):  # noqa: ANN202 - cron string, asset list or None
    if mailing.schedule == "after_import":
        return [CONTACTS_ASSET]
    return mailing.schedule or None


def _final_try() -> bool:
    from airflow.sdk import get_current_context

    ti = get_current_context()["ti"]
    return ti.try_number > ti.max_tries


def build_mailing_dag(mailing: Mailing) -> DAG:
    doc = (
        f"### {mailing.name}\n\n{mailing.description}\n\n"
        f"Audience: contacts in any of **{', '.join(mailing.audience.segments)}**"
        + (
            f", except **{', '.join(mailing.audience.exclude_segments)}**"
            if mailing.audience.exclude_segments
            else ""
        )
        + f". Languages: {', '.join(mailing.variants)} (default {mailing.default_language}).\n\n"
        "Scheduled runs are silent; a manual trigger shows a form for a dry run, the languages and a cap.\n"
        f"Defined in `include/mailings/{mailing.slug}.yaml`."
    )
    with DAG(
        dag_id=mailing.dag_id,
        description=mailing.name,
        schedule=_schedule(mailing),
        start_date=datetime(2026, 1, 1),
        catchup=False,
        max_active_runs=1,
        doc_md=doc,
        tags=["segmail", "mailing"],
        default_args={
            "retries": 3,
            "retry_delay": timedelta(seconds=20),
            "retry_exponential_backoff": True,
            "max_retry_delay": timedelta(minutes=10),
        },
        params={
            "dry_run": Param(False, type="boolean", description="Render every mail, send none."),
            "languages": Param(
                list(mailing.variants),
                type="array",
                items={"type": "string", "enum": list(mailing.variants)},
                description="Languages to include.",
            ),
            "max_recipients": Param(0, type="integer", minimum=0, description="0 = everyone."),
        },
    ) as dag:
        slug = mailing.slug

        @task
        def freeze_audience(params: dict, run_id: str, dag_run=None) -> int:  # noqa: ANN001
            """Fix the audience: one delivery row per contact, skipped ones with their reason."""
            from datetime import UTC, datetime

            from airflow.sdk.exceptions import AirflowSkipException

            from segmail.mailings import definition, send
            from segmail.store import migrate

            migrate.upgrade()
            definition = definition.get_mailing(slug)
            if dag_run is not None and dag_run.run_type == "scheduled":
                reason = definition.too_late(scheduled_for=dag_run.run_after, now=datetime.now(UTC))
                if reason:
                    raise AirflowSkipException(reason)
            languages = params["languages"] if set(params["languages"]) != set(definition.variants) else None
            return send.freeze_audience(
                definition,
                dag_run_id=run_id,
                dry_run=params["dry_run"],
                languages=languages,
                max_recipients=params["max_recipients"] or None,
            )

        @task
        def plan_batches(mailing_run_id: int) -> list[dict]:
            from segmail.mailings import definition, send

            definition = definition.get_mailing(slug)
            return send.plan_batches(mailing_run_id, batch_size=definition.batch_size)

        @send_batch_task(pool=SMTP_POOL, map_index_template="{{ batch['label'] }}")
        def send_batch(batch: dict) -> dict:
            """One SMTP connection per batch; pending mails after a 4xx or a drop make the task retry."""
            from segmail.mailings import definition, send

            definition = definition.get_mailing(slug)
            transport = send.SmtpHookTransport(definition.smtp_conn_id)
            return send.send_batch(
                batch["batch_id"], mailing=definition, transport=transport, final_try=_final_try()
            ).as_dict()

        @task(trigger_rule="all_done", retries=0)
        def summarize(mailing_run_id: int) -> dict:
            """Totals per status and language; the run turns red past the failure threshold."""
            from airflow.sdk.exceptions import AirflowFailException

            from segmail.mailings import definition, send

            try:
                return send.summarize_run(mailing_run_id, mailing=definition.get_mailing(slug))
            except send.FailureThresholdExceeded as exc:
                raise AirflowFailException(str(exc)) from None

        run = freeze_audience()
        send_batch.expand(batch=plan_batches(run)) >> summarize(run)
    return dag
