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
