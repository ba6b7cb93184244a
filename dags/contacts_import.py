"""
### contacts_import

Nightly import of contact CSV files from the inbox. Each file is imported once, atomically, by its
own mapped task; it then moves to `archive/` (with a `.report.csv` of rejected rows and warnings)
or, when it cannot be read at all, to `rejected/` (with a `.error.txt`). A successful run emits the
`segmail://contacts` Asset event with the counts, so mailings can run after imports.

Trigger with a form to pick `mode` (merge adds segments, replace makes them exactly the file's) or
another inbox.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Param, dag, task
from segmail import settings
from segmail.orchestration.assets import CONTACTS_ASSET


@dag(
    schedule=settings.current().import_cron,  # SEGMAIL_IMPORT_CRON; empty: manual only
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["segmail", "import"],
    default_args={"retries": 3, "retry_delay": timedelta(seconds=30), "retry_exponential_backoff": True},
    params={
        "mode": Param(
            "merge", enum=["merge", "replace"], description="Segment memberships: merge or replace."
        ),
        "inbox": Param(
            "",
            type="string",
            description="Inbox location; empty = SEGMAIL_INBOX or "
            "$AIRFLOW_HOME/segmail/inbox. Object storage URLs such as s3://bucket/inbox work.",
        ),
        "notify_to": Param("", type="string", description="Optional e-mail address for a completion notice."),
    },
)
def contacts_import():
    @task
    def find_files(params: dict) -> list[str]:
        """Check the schema, then list the inbox (paths only: XCom carries references)."""
        from segmail.orchestration import tasks

        return tasks.find_inbox_files(params["inbox"])

    @task(map_index_template="{{ file_name }}", max_active_tis_per_dag=1)
    def import_file(path: str, params: dict, run_id: str) -> dict:
        from segmail.orchestration import tasks

        return tasks.import_inbox_file(path, mode=params["mode"], run_id=run_id)

    @task(outlets=[CONTACTS_ASSET], trigger_rule="none_failed")
    def summarize(results: list[dict], params: dict, outlet_events=None) -> dict:
        """Emit the Asset event with the totals; skip (no event) when no file was imported."""
        from segmail.orchestration import tasks

        totals = tasks.import_totals(results)
        outlet_events[CONTACTS_ASSET].extra = totals
        tasks.notify_import(to=params["notify_to"], totals=totals)
        return totals

    @task(trigger_rule="none_failed")
    def check_rejected_files(results: list[dict]) -> None:
        """Turn the run red when a whole file was rejected, after the good files have landed."""
        from segmail.orchestration import tasks

        tasks.fail_on_rejected_files(results)

    results = import_file.expand(path=find_files())
    summarize(results)
    check_rejected_files(results)


contacts_import()
