"""Helpers shared by the tests (importable without side effects, unlike conftest.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

# The key tests/conftest.py configures as the `segmail_signing` connection.
TEST_SIGNING_KEY = b"segmail-test-signing-key-0123456789"

if TYPE_CHECKING:
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


# Every task of a newsletter run that sends its three language batches (de, en, fr).
NEWSLETTER_RUN_SUCCEEDED = {
    "freeze_audience": "success",
    "plan_batches": "success",
    "send_batch[de #1]": "success",
    "send_batch[en #2]": "success",
    "send_batch[fr #3]": "success",
    "summarize": "success",
}


def create_smtp_pool() -> None:
    """The `smtp` pool as `make airflow` creates it: deferred batches take no slot."""
    from airflow.models.pool import Pool

    Pool.create_or_update_pool(
        "smtp", slots=4, description="segmail SMTP connections", include_deferred=False
    )
