"""`make demo`: set up the embedded defaults and run the real DAGs on the sample data.

SQLite under AIRFLOW_HOME for both Airflow and segmail; the sample contacts go through the
`contacts_import` DAG with dag.test(), then the import report and segment counts are printed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _configure_environment() -> None:
    """Defaults for running outside `make` too; must happen before Airflow is imported."""
    os.environ.setdefault("AIRFLOW_HOME", str(ROOT / ".airflow"))
    os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(ROOT / "dags"))
    os.environ.setdefault("AIRFLOW__CORE__PLUGINS_FOLDER", str(ROOT / "plugins"))
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    os.environ.setdefault("SEGMAIL_INCLUDE_DIR", str(ROOT / "include"))
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")


def step(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def migrate_databases() -> None:
    from segmail import migrate

    result = subprocess.run(["airflow", "db", "migrate"], capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"airflow db migrate failed:\n{result.stderr[-2000:]}")
    migrate.upgrade()


def seed_sample_setup(include: Path) -> None:
    """Salespeople and segments from include/sample/setup.yaml; existing ones are left as they are."""
    import yaml

    from segmail import admin
    from segmail.errors import AlreadyExists

    setup = yaml.safe_load((include / "sample" / "setup.yaml").read_text(encoding="utf-8"))
    for person in setup["salespeople"]:
        admin.add_salesperson(**person)
    for segment in setup["segments"]:
        try:
            admin.create_segment(**segment)
        except AlreadyExists:
            pass


def run_dag(dag_id: str, conf: dict):  # noqa: ANN201 - a DagRun
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag().get_dag(dag_id)
    if dag is None:
        sys.exit(f"DAG {dag_id} not found in {os.environ['AIRFLOW__CORE__DAGS_FOLDER']}")
    return dag.test(run_conf=conf)


def print_import_report(import_run_ids: list[int]) -> None:
    from segmail.cli import _table
    from segmail.db import default_engine
    from segmail.reports import iter_issues
    from segmail.status import recent_imports

    runs = [r for r in recent_imports(limit=20) if r["id"] in import_run_ids]
    print(_table(runs, ("id", "file_name", "status", "rows", "created", "updated", "unchanged", "rejected",
                        "duplicates", "warnings")))
    for run_id in import_run_ids:
        rows = [
            {"row": line, "column": column or "", "value": (value or "")[:30], "severity": severity, "reason": reason}
            for line, column, value, severity, reason in iter_issues(default_engine(), run_id)
        ]
        print(f"\nRejected rows, duplicates and warnings of import run {run_id}:")
        print(_table(rows, ("row", "column", "value", "severity", "reason")))


def main() -> int:
    _configure_environment()
    from segmail import admin, inbox
    from segmail.cli import _table
    from segmail.config import database_url, include_dir

    include = include_dir()
    step(f"Airflow home {os.environ['AIRFLOW_HOME']}; segmail database {database_url()}")
    migrate_databases()
    seed_sample_setup(include)

    step("Dropping the sample contact file into the inbox")
    inbox_dir = Path(inbox.default_inbox())
    inbox_dir.mkdir(parents=True, exist_ok=True)
    # A new name each time, so a second demo shows a re-import that changes nothing.
    target = inbox_dir / f"contacts-{datetime.now(UTC):%Y%m%d-%H%M%S}.csv"
    shutil.copy(include / "sample" / "contacts.csv", target)
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
    print(_table(admin.list_segments(), ("name", "salesperson", "members", "description")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
