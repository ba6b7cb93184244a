"""The operator extra link from a mailing's send task to its run's page in "Segment mailings"."""

from __future__ import annotations

from airflow.sdk import BaseOperatorLink

PAGES_PREFIX = "/segmail"


class MailingRunLink(BaseOperatorLink):
    name = "Mailing run"

    def get_link(self, operator, *, ti_key) -> str:  # noqa: ANN001
        from sqlalchemy import text

        from segmail.store.db import default_engine

        slug = ti_key.dag_id.removeprefix("mailing__")
        with default_engine().connect() as conn:
            run_id = conn.execute(
                text("SELECT id FROM segmail_mailing_runs WHERE mailing = :m AND dag_run_id = :d"),
                {"m": slug, "d": ti_key.run_id},
            ).scalar()
        return f"{PAGES_PREFIX}/runs/{run_id}" if run_id else f"{PAGES_PREFIX}/?mailing={slug}"
