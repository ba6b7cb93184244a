"""Defines no DAG: it reports broken mailing definitions (include/mailings/*.yaml) as this file's DAG
import error in the Airflow UI, naming each file and field. dags/mailings.py registers the valid ones,
so one bad file no longer hides every mailing DAG."""

from __future__ import annotations

from segmail.orchestration.mailing_dag import raise_definition_errors

raise_definition_errors()
