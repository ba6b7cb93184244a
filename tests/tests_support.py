"""Helpers shared by the DAG tests."""

from __future__ import annotations


def get_dag(dag_id: str):  # noqa: ANN201
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag().get_dag(dag_id)
    assert dag is not None, f"DAG {dag_id} not found"
    return dag


def states(dag_run) -> dict[str, str]:  # noqa: ANN001
    return {
        (ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.rendered_map_index}]"): ti.state
        for ti in dag_run.get_task_instances()
    }
