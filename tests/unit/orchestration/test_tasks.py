"""The task helpers' rules that need neither Airflow's database nor segmail's."""

from __future__ import annotations

import pytest
from airflow.sdk.exceptions import AirflowFailException
from segmail.errors import NotFound
from segmail.orchestration import tasks


def test_a_user_error_fails_the_task_without_retry_and_with_its_message_only():
    with pytest.raises(AirflowFailException) as failed:
        with tasks.fail_task_on_user_error():
            raise NotFound("no mailing 'spring' in include/mailings")
    assert str(failed.value) == "no mailing 'spring' in include/mailings"
    assert failed.value.__cause__ is None and failed.value.__suppress_context__


def test_other_errors_pass_through_for_airflow_to_retry():
    with pytest.raises(ConnectionError), tasks.fail_task_on_user_error():
        raise ConnectionError("database went away")


def test_rejected_files_turn_the_run_red_after_the_good_ones():
    results = [
        {"file_name": "a.csv", "status": "succeeded"},
        {"file_name": "b.csv", "status": "rejected", "error": "missing required column(s): Email"},
    ]
    with pytest.raises(AirflowFailException, match=r"(?s)moved to rejected/.*b\.csv: missing required"):
        tasks.fail_on_rejected_files(results)
    tasks.fail_on_rejected_files(results[:1])
    tasks.fail_on_rejected_files(None)
