"""One `mailing__<slug>` DAG per file in include/mailings/ (built by segmail.orchestration.mailing_dag)."""

from __future__ import annotations

from segmail.mailings.definition import load_mailings
from segmail.orchestration.mailing_dag import build_mailing_dag

_mailings, _errors = load_mailings()
for _slug, _mailing in _mailings.items():
    globals()[_mailing.dag_id] = build_mailing_dag(_mailing)
if _errors:  # shown as an import error in the Airflow UI, naming the file and the field
    raise ValueError("invalid mailing definition(s): " + " | ".join(_errors.values()))
