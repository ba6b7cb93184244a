"""`make demo`: set up the embedded defaults and run the real DAGs on the sample data.

SQLite under AIRFLOW_HOME for both Airflow and segmail, and a local SMTP server that keeps every
mail as an .eml file. The sample contacts go through `contacts_import`, the newsletter through
`mailing__newsletter` and a test mail through `mailing_test_mail`, all with dag.test(). Every mail
carries a signed unsubscribe link to the local public app (`make serve-public`); the demo prints one.
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from email import message_from_bytes, policy
from pathlib import Path
from typing import TYPE_CHECKING

from segmail.dev.local import (
    configure_environment,
    configure_unsubscribe,
    drop_sample_into_inbox,
    ensure_sms_pool,
    ensure_smtp_pool,
    mark_seeded,
    migrate_databases,
    seed_sample_setup,
)

if TYPE_CHECKING:
    from email.message import EmailMessage

    from airflow.models.dagrun import DagRun

    from segmail.dev.smtpsink import SmtpSink


def step(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def run_dag(dag_id: str, conf: dict) -> DagRun:
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag().get_dag(dag_id)
    if dag is None:
        sys.exit(f"DAG {dag_id} not found in {os.environ['AIRFLOW__CORE__DAGS_FOLDER']}")
    return dag.test(run_conf=conf)


def print_import_report(import_run_ids: list[int]) -> None:
    from segmail.cli.imports import ISSUE_COLUMNS, issue_rows
    from segmail.cli.tables import format_table
    from segmail.store.read import IMPORT_COUNTS, recent_imports

    runs = [r for r in recent_imports(limit=20) if r["id"] in import_run_ids]
    print(format_table(runs, ("id", "file_name", "status", *IMPORT_COUNTS)))
    for run_id in import_run_ids:
        rows, _total = issue_rows(run_id)
        print(f"\nRejected rows, duplicates and warnings of import run {run_id}:")
        print(format_table(rows, ISSUE_COLUMNS))


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


def prepare() -> None:
    configure_environment()
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    configure_unsubscribe()
    from segmail.settings import airflow_home, database_url

    step(f"Airflow home {airflow_home()}; segmail database {database_url()}")
    migrate_databases()
    seed_sample_setup()


def import_sample() -> dict | None:
    """The sample file through contacts_import; the run's totals, or None when it did not complete."""
    step("Dropping the sample contact file into the inbox")
    # A new name each time, so a second demo shows a re-import that changes nothing.
    target = drop_sample_into_inbox()
    mark_seeded(target.name)  # `make airflow` then does not seed again
    inbox_dir = target.parent
    print(target)

    step("Running the contacts_import DAG (dag.test)")
    run = run_dag("contacts_import", {"inbox": str(inbox_dir), "mode": "merge"})
    summary = next((ti for ti in run.get_task_instances() if ti.task_id == "summarize"), None)
    print(f"contacts_import run {run.run_id}: {run.state}")
    if summary is None or summary.state != "success":
        print("the import did not complete; see the task logs above", file=sys.stderr)
        return None
    totals = summary.xcom_pull(task_ids="summarize")

    step("Import report")
    print_import_report(totals["import_run_ids"])
    print(f"\nArchived file and its report CSV: {inbox_dir / 'archive'}")
    return totals


def print_segments() -> None:
    from segmail.cli.main import SEGMENT_COLUMNS, format_table
    from segmail.contacts import segments

    step("Segments")
    print(format_table(segments.list_segments(), SEGMENT_COLUMNS))


def send_newsletter(sink: SmtpSink, outbox: Path) -> tuple[DagRun, int]:
    step(f"Sending the newsletter (mailing__newsletter) to a local SMTP server on port {sink.port}")
    run = run_dag("mailing__newsletter", {})
    print(f"mailing__newsletter run {run.run_id}: {run.state}")
    freeze = next(ti for ti in run.get_task_instances() if ti.task_id == "freeze_audience")
    mailing_run_id = freeze.xcom_pull(task_ids="freeze_audience")
    print_mailing_status(mailing_run_id)
    print(f"\n{len(sink.messages)} mails received, stored as .eml files in {outbox}")
    return run, mailing_run_id


def send_test_mail(sink: SmtpSink) -> DagRun:
    step("Test mail to the salesperson of the newsletter's segment (mailing_test_mail)")
    before = len(sink.messages)
    run = run_dag("mailing_test_mail", {"mailing": "newsletter", "language": "all"})
    for received in sink.messages[before:]:
        message = received.parsed()
        print(f"  to {received.recipients[0]}: {message['Subject']}")
    print(f"mailing_test_mail run {run.run_id}: {run.state}")
    return run


def unsubscribe_link(outbox: Path) -> tuple[Path, EmailMessage, str] | None:
    """The first newsletter mail in the outbox with its unsubscribe URL (List-Unsubscribe, web link)."""
    for path in sorted(outbox.glob("*.eml")):
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        links = [link.strip(" <>") for link in str(message.get("List-Unsubscribe", "")).split(",")]
        url = next((link for link in links if link.startswith(("https://", "http://"))), None)
        if url and not str(message["Subject"]).startswith("[TEST]"):
            return path, message, url
    return None


def print_unsubscribe_link(outbox: Path) -> None:
    found = unsubscribe_link(outbox)
    if found is None:
        print(f"no mail with an unsubscribe link in {outbox}", file=sys.stderr)
        return
    path, message, url = found
    step(f"Unsubscribe link of the mail to {message['To']} ({path.name})")
    print(f"List-Unsubscribe: {message['List-Unsubscribe']}")
    html = message.get_body(("html",))
    if html is not None and url in html.get_content():
        print("The same link is in the mail's footer.")
    if not url.startswith("https://"):
        print("(No List-Unsubscribe-Post: mails promise one-click only for an https:// SEGMAIL_PUBLIC_URL.)")
    print(
        "Try it: run `make serve-public` in another terminal, then open the link in a browser (the page "
        f"asks first), or click as a mail client does:\n  curl -X POST -d List-Unsubscribe=One-Click {url}"
    )


def send_mailings() -> tuple[DagRun, DagRun, int, Path]:
    """The newsletter and its test mail, into a local SMTP server that keeps every mail as .eml."""
    from segmail.dev.smtpsink import SmtpSink
    from segmail.settings import airflow_home

    outbox = airflow_home() / "segmail" / "outbox" / datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    with SmtpSink(store_dir=outbox) as sink:
        os.environ["AIRFLOW_CONN_SMTP_DEFAULT"] = sink.connection_json
        ensure_smtp_pool()
        ensure_sms_pool()
        run, mailing_run_id = send_newsletter(sink, outbox)
        test_run = send_test_mail(sink)
    return run, test_run, mailing_run_id, outbox


def main() -> int:
    prepare()
    if import_sample() is None:
        return 1
    print_segments()
    run, test_run, mailing_run_id, outbox = send_mailings()
    print_unsubscribe_link(outbox)
    from segmail.dev.sms_demo import sms_broadcast

    sms_ok = sms_broadcast()
    print(
        "\nMore: .venv/bin/segmail status newsletter | .venv/bin/segmail status --run "
        f"{mailing_run_id} | .venv/bin/segmail status --tests"
    )
    return 0 if run.state == "success" and test_run.state == "success" and sms_ok else 1


if __name__ == "__main__":
    sys.exit(main())
