"""A broken mailing definition is reported as a DAG import error and hides no valid mailing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def include_with_a_broken_mailing(tmp_path, monkeypatch):
    """A copy of include/ with a second valid mailing and one whose batch_size is not a number."""
    include = tmp_path / "include"
    shutil.copytree(ROOT / "include", include)
    newsletter = (include / "mailings" / "newsletter.yaml").read_text(encoding="utf-8")
    (include / "mailings" / "spring_offer.yaml").write_text(newsletter, encoding="utf-8")
    broken = newsletter.replace("batch_size: 500", "batch_size: lots")
    assert broken != newsletter
    (include / "mailings" / "broken_offer.yaml").write_text(broken, encoding="utf-8")
    monkeypatch.setenv("SEGMAIL_INCLUDE_DIR", str(include))
    return include


def test_one_broken_file_hides_no_mailing_and_is_reported_with_its_field(
    include_with_a_broken_mailing, airflow_home
):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert {"mailing__newsletter", "mailing__spring_offer", "mailing_test_mail"} <= set(bag.dags)
    assert "mailing__broken_offer" not in bag.dags
    assert set(bag.dags["mailing_test_mail"].params.get_param("mailing").schema["enum"]) == {
        "newsletter",
        "sms_service_reminder",
        "spring_offer",
    }
    (reporter, error), *others = bag.import_errors.items()
    assert others == []
    assert Path(reporter).name == "mailing_definition_errors.py"
    assert "broken_offer.yaml: batch_size: Input should be a valid integer" in error


def test_without_broken_files_nothing_is_reported(airflow_home):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {}
    assert "mailing__newsletter" in bag.dags
