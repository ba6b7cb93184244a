"""The segments_admin DAG with dag.test(): form actions, mistakes, and an unmigrated database."""

from __future__ import annotations

import pytest
from segmail.contacts import segments
from tests_support import get_dag, states


@pytest.mark.airflow
def test_segments_admin_dag_runs_form_actions(engine, airflow_home):
    dag = get_dag("segments_admin")
    run = dag.test(
        run_conf={
            "action": "add_salesperson",
            "salesperson": "jd",
            "salesperson_name": "Jane",
            "salesperson_email": "jane@example.com",
        }
    )
    assert run.state == "success"
    run = dag.test(run_conf={"action": "create_segment", "segment": "Region North", "salesperson": "JD"})
    assert run.state == "success"
    assert segments.list_segments(engine=engine)[0]["salesperson"] == "JD"
    bad = dag.test(run_conf={"action": "create_segment", "segment": "Region North"})
    assert bad.state == "failed"
    assert len(segments.list_segments(engine=engine)) == 1


@pytest.mark.airflow
def test_a_task_on_an_unmigrated_database_fails_with_a_one_line_instruction(
    airflow_home, tmp_path, monkeypatch, capfd
):
    from airflow.sdk.exceptions import AirflowFailException
    from segmail.orchestration import tasks
    from segmail.store.db import default_engine
    from segmail.store.migrate import head_revision

    monkeypatch.setenv("SEGMAIL_DB_URL", f"sqlite:///{tmp_path / 'never-migrated.db'}")
    default_engine.cache_clear()
    try:
        expected = (
            f"segmail's database schema is at no revision (empty database), expected {head_revision()}: "
            "run `segmail db upgrade`"
        )
        run = get_dag("segments_admin").test(run_conf={"action": "list_segments"})
        assert run.state == "failed"
        assert states(run) == {"run_action": "failed"}
        out, err = capfd.readouterr()
        assert f"AirflowFailException: {expected}\n" in out + err  # the task log: one line, the fix
        with pytest.raises(AirflowFailException) as failed:
            tasks.run_admin_action({"action": "list_segments"})
        assert str(failed.value) == expected
    finally:
        default_engine.cache_clear()
