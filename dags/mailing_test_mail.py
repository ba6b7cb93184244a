"""
### mailing_test_mail

Send a test mail of a mailing before the real run: one mail per chosen language, to the
salesperson responsible for the mailing (the mailing's `salesperson`, else the one of its first
audience segment), subject prefixed `[TEST]`, with the real attachments. For an SMS mailing
(`channel: sms`) each variant goes as an SMS, text prefixed `[TEST]`, to that salesperson's mobile.
Nothing is recorded on contacts; test sends are listed with `segmail status --tests`.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import Param, dag, task
from segmail.mailings.definition import load_mailings

_MAILINGS, _ = load_mailings()
_LANGUAGES = sorted({code for m in _MAILINGS.values() for code in m.variants})


@dag(
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    doc_md=__doc__,
    tags=["segmail", "mailing"],
    params={
        "mailing": Param(
            next(iter(_MAILINGS), ""), enum=list(_MAILINGS) or [""], description="Which mailing."
        ),
        "language": Param("all", enum=["all", *_LANGUAGES], description="One language, or every variant."),
        "contact": Param(
            "",
            type="string",
            description="External ID or e-mail of a contact to render with; empty = sample values.",
        ),
        "recipient": Param(
            "",
            type="string",
            description="Send here instead of the salesperson (a +number for an SMS mailing).",
        ),
    },
)
def mailing_test_mail():
    @task(retries=0)
    def send_test_mail(params: dict, run_id: str) -> list[dict]:
        from segmail.orchestration import tasks

        return tasks.send_test_mail(params, run_id)

    send_test_mail()


mailing_test_mail()
