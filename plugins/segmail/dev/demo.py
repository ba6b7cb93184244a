"""`make demo`: set up the embedded defaults and run the real DAGs on the sample data.

SQLite under AIRFLOW_HOME for both Airflow and segmail, and a local SMTP server that keeps every
mail as an .eml file. The sample contacts go through `contacts_import`, the newsletter through
`mailing__newsletter` and a test mail through `mailing_test_mail`, all with dag.test().
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from pathlib import Path

from segmail.dev.local import (
    configure_environment,
    drop_sample_into_inbox,
    ensure_smtp_pool,
    migrate_databases,
    seed_sample_setup,
)


def step(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def run_dag(dag_id: str, conf: dict):  # noqa: ANN201 - a DagRun
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag().get_dag(dag_id)
    if dag is None:
        sys.exit(f"DAG {dag_id} not found in {os.environ['AIRFLOW__CORE__DAGS_FOLDER']}")
    return dag.test(run_conf=conf)


def print_import_report(import_run_ids: list[int]) -> None:
    from segmail.cli.main import format_table
    from segmail.store.db import default_engine
    from segmail.store.read import iter_issues, recent_imports

    runs = [r for r in recent_imports(limit=20) if r["id"] in import_run_ids]
    print(
        format_table(
            runs,
            (
                "id",
                "file_name",
                "status",
                "rows",
                "created",
                "updated",
                "unchanged",
                "rejected",
                "duplicates",
                "warnings",
            ),
        )
    )
    for run_id in import_run_ids:
        rows = [
            {
                "row": line,
                "column": column or "",
                "value": (value or "")[:30],
                "severity": severity,
                "reason": reason,
            }
            for line, column, value, severity, reason in iter_issues(default_engine(), run_id)
        ]
        print(f"\nRejected rows, duplicates and warnings of import run {run_id}:")
        print(format_table(rows, ("row", "column", "value", "severity", "reason")))


def print_mailing_status(run_id: int) -> None:
    from segmail.cli.main import format_table
    from segmail.store.read import run_deliveries, run_totals

    run = run_totals(run_id)
    rows = [
        {"language": lang, **{s: counts.get(s, 0) for s in ("sent", "failed", "skipped", "pending")}}
        for lang, counts in run["by_language"].items()
    ]
    print(format_table(rows, ("language", "sent", "failed", "skipped", "pending")))
    skipped = [d for d in run_deliveries(run_id) if d["status"] != "sent"]
    if skipped:
        print("\nNot sent, with the reason:")
        print(
            format_table(
                [{k: d[k] or "" for k in ("external_id", "email", "status", "reason")} for d in skipped],
                ("external_id", "email", "status", "reason"),
            )
        )


def main() -> int:
    configure_environment()
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    from segmail.cli.main import format_table
    from segmail.contacts import segments
    from segmail.settings import database_url

    step(f"Airflow home {os.environ['AIRFLOW_HOME']}; segmail database {database_url()}")
    migrate_databases()
    seed_sample_setup()

    step("Dropping the sample contact file into the inbox")
    # A new name each time, so a second demo shows a re-import that changes nothing.
    target = drop_sample_into_inbox()
    inbox_dir = target.parent
    print(target)

    step("Running the contacts_import DAG (dag.test)")
    run = run_dag("contacts_import", {"inbox": str(inbox_dir), "mode": "merge"})
    tis = {ti.task_id: ti for ti in run.get_task_instances() if ti.task_id == "summarize"}
    print(f"contacts_import run {run.run_id}: {run.state}")
    if "summarize" not in tis or tis["summarize"].state != "success":
        print("the import did not complete; see the task logs above", file=sys.stderr)
        return 1
    totals = tis["summarize"].xcom_pull(task_ids="summarize")

    step("Import report")
    print_import_report(totals["import_run_ids"])
    print(f"\nArchived file and its report CSV: {inbox_dir / 'archive'}")

    step("Segments")
    print(format_table(segments.list_segments(), ("name", "salesperson", "members", "description")))

    from segmail.dev.smtpsink import SmtpSink

    outbox = (
        Path(os.environ["AIRFLOW_HOME"]) / "segmail" / "outbox" / datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    )
    with SmtpSink(store_dir=outbox) as sink:
        os.environ["AIRFLOW_CONN_SMTP_DEFAULT"] = sink.connection_uri
        ensure_smtp_pool()
        step(f"Sending the newsletter (mailing__newsletter) to a local SMTP server on port {sink.port}")
        run = run_dag("mailing__newsletter", {})
        print(f"mailing__newsletter run {run.run_id}: {run.state}")
        summary = next(ti for ti in run.get_task_instances() if ti.task_id == "freeze_audience")
        mailing_run_id = summary.xcom_pull(task_ids="freeze_audience")
        print_mailing_status(mailing_run_id)
        print(f"\n{len(sink.messages)} mails received, stored as .eml files in {outbox}")

        step("Test mail to the salesperson of the newsletter's segment (mailing_test_mail)")
        before = len(sink.messages)
        test_run = run_dag("mailing_test_mail", {"mailing": "newsletter", "language": "all"})
        for received in sink.messages[before:]:
            message = received.parsed()
            print(f"  to {received.recipients[0]}: {message['Subject']}")
        print(f"mailing_test_mail run {test_run.run_id}: {test_run.state}")
    print(
        "\nMore: .venv/bin/segmail status newsletter | .venv/bin/segmail status --run "
        f"{mailing_run_id} | .venv/bin/segmail status --tests"
    )
    return 0 if run.state == "success" and test_run.state == "success" else 1


if __name__ == "__main__":
    sys.exit(main())
