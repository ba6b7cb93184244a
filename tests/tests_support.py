"""Helpers shared by the tests (importable without side effects, unlike conftest.py)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

# The key tests/conftest.py configures as the `segmail_signing` connection.
TEST_SIGNING_KEY = b"segmail-test-signing-key-0123456789"

if TYPE_CHECKING:
    import pytest
    from airflow.models.dagrun import DagRun
    from airflow.sdk import DAG


def get_dag(dag_id: str) -> DAG:
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag().get_dag(dag_id)
    assert dag is not None, f"DAG {dag_id} not found"
    return dag


def states(dag_run: DagRun) -> dict[str, str]:
    return {
        (ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.rendered_map_index}]"): ti.state
        for ti in dag_run.get_task_instances()
    }


def run_succeeded(*batches: str) -> dict[str, str]:
    """`states` of a mailing run whose every task succeeded, with these send batches ("de #1")."""
    return {
        "freeze_audience": "success",
        "plan_batches": "success",
        **{f"send_batch[{batch}]": "success" for batch in batches},
        "summarize": "success",
    }


# Every task of a newsletter run that sends its three language batches (de, en, fr).
NEWSLETTER_RUN_SUCCEEDED = run_succeeded("de #1", "en #2", "fr #3")


def create_smtp_pool() -> None:
    """The `smtp` pool as `make airflow` creates it: deferred batches take no slot."""
    from airflow.models.pool import Pool

    Pool.create_or_update_pool(
        "smtp", slots=4, description="segmail SMTP connections", include_deferred=False
    )


def copy_include(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of include/ in `tmp_path` that the DAG files and the CLI read (SEGMAIL_INCLUDE_DIR)."""
    import shutil

    copy = tmp_path / "include"
    shutil.copytree(Path(__file__).resolve().parents[1] / "include", copy)
    monkeypatch.setenv("SEGMAIL_INCLUDE_DIR", str(copy))
    return copy
