"""Every DAG file parses, and none does heavy imports or I/O at its top level."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

DAGS = sorted((Path(__file__).resolve().parents[2] / "dags").glob("*.py"))
# Files whose only job is to report problems as import errors; with valid definitions they define nothing.
REPORTERS = {"mailing_definition_errors.py"}


@pytest.mark.parametrize("dag_file", DAGS, ids=lambda p: p.name)
def test_dag_file_imports_without_errors(dag_file, airflow_home):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(dag_file))
    assert bag.import_errors == {}
    if dag_file.name in REPORTERS:
        assert not bag.dags, f"{dag_file.name} only reports errors; it defines no DAG"
        return
    assert bag.dags, f"{dag_file.name} defines no DAG"
    for dag in bag.dags.values():
        assert dag.doc_md, f"{dag.dag_id} has no doc_md"
        assert "segmail" in dag.tags


@pytest.mark.parametrize("dag_file", DAGS, ids=lambda p: p.name)
def test_dag_file_top_level_stays_light(dag_file):
    """Parsing must not pull in pandas, the import engine or a database driver."""
    probe = (
        "import runpy, sys; runpy.run_path(sys.argv[1]);"
        "heavy = [m for m in ('pandas', 'segmail.imports.pipeline', 'psycopg', 'phonenumbers') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, str(dag_file)], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == ""
