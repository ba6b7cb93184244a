"""The end of a run: its totals stored, and the run failed when too many mails failed."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy import Engine, text

from segmail.errors import SegmailError
from segmail.mailings.definition import Mailing
from segmail.store.db import default_engine
from segmail.store.models import DeliveryStatus, RunStatus
from segmail.store.read import run_totals


class FailureThresholdExceeded(SegmailError):
    """More mails failed than the mailing's threshold allows, or some are still pending."""


def summarize_run(run_id: int, *, mailing: Mailing, engine: Engine | None = None) -> dict:
    """Store the run's totals; raise FailureThresholdExceeded when too many mails failed."""
    engine = engine or default_engine()
    totals = run_totals(run_id, engine=engine)
    sent, failed, pending = (
        totals[DeliveryStatus.SENT],
        totals[DeliveryStatus.FAILED],
        totals[DeliveryStatus.PENDING],
    )
    attempted = sent + failed
    share = failed / attempted if attempted else 0.0
    run_failed = share > mailing.failure_threshold or pending > 0
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE segmail_mailing_runs SET totals = :t, status = :s, finished_at = :now WHERE id = :r"
            ),
            {
                "t": json.dumps(totals),
                "s": RunStatus.FAILED if run_failed else RunStatus.SUCCEEDED,
                "now": datetime.now(UTC),
                "r": run_id,
            },
        )
    if run_failed:
        raise FailureThresholdExceeded(
            f"run {run_id}: {failed} of {attempted} mails failed ({share:.1%}; threshold "
            f"{mailing.failure_threshold:.1%}), {pending} pending"
        )
    return totals
