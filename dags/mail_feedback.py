"""
### mail_feedback

Reads what comes back from recipients out of the bounce mailbox (the IMAP connection
`segmail_bounces`), every 15 minutes (`SEGMAIL_FEEDBACK_CRON`; empty: only when triggered), one run
at a time, in batches of 200 messages:

- a **hard bounce** (5.x.x) marks the mail `bounced` and suppresses the address;
- a **soft bounce** (4.x.x, delayed, mailbox full) is counted; `SEGMAIL_SOFT_BOUNCE_LIMIT` (3) in a
  row suppress the address;
- a **spam complaint** (ARF) opts the address out and suppresses it;
- a mail to the **`mailto:` unsubscribe** address opts the address out.

Each lands on the delivery and in the contact's activity log. Reports are moved to
`segmail/processed` (auto-replies and anything unrecognised to `segmail/unrecognised`), never
deleted; reading a report twice changes nothing. The touched runs' totals are refreshed, and this
run turns red when one of them crosses the bounce or complaint rate limit. Without a
`segmail_bounces` connection the run is skipped.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import dag, task
from segmail import settings


@dag(
    schedule=settings.current().feedback_cron,  # SEGMAIL_FEEDBACK_CRON; empty: manual only
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["segmail", "feedback"],
    default_args={
        "retries": 3,
        "retry_delay": timedelta(seconds=30),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=10),
    },
)
def mail_feedback():
    @task
    def read_mailbox() -> dict:
        """Apply every report in the mailbox; a retry re-reads only what was not moved yet."""
        from segmail.orchestration import tasks

        return tasks.read_feedback_mailbox()

    @task(retries=0)
    def summarize(counts: dict) -> str:
        from segmail.orchestration import tasks

        return tasks.summarize_feedback(counts)

    summarize(read_mailbox())


mail_feedback()
