"""One Airflow DAG `mailing__<slug>` per valid file in include/mailings/ (built by
segmail.orchestration.mailing_dag). A broken file hides no other mailing: it is reported as the import
error of dags/mailing_definition_errors.py, naming the file and the field."""

from __future__ import annotations

from segmail.orchestration.mailing_dag import build_mailing_dags

globals().update(build_mailing_dags())
