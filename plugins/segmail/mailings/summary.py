"""The end of a run: its totals stored, and the run failed when too many mails failed, bounced or
drew complaints.

The stored totals (`segmail_mailing_runs.totals`) hold the counts per status and language and what
came back from recipients: delivered, hard and soft bounces, complaints, unsubscribes and their
rates. Bounces and complaints mostly arrive after the run has ended, so the `mail_feedback` DAG
calls `refresh_totals` for every finished run its reports touched: the stored totals are written
again, the run's status is left as sending decided it, and a run whose bounce rate
(SEGMAIL_MAX_BOUNCE_RATE, default 5 %) or complaint rate (SEGMAIL_MAX_COMPLAINT_RATE, default
0.3 %) crosses its limit only then is returned, so that DAG run turns red naming it. Live numbers
are always in `store.read.runs_totals`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy import Engine, bindparam, text

from segmail import settings
from segmail.errors import SegmailError
from segmail.mailings.definition import Mailing
from segmail.store.db import default_engine
from segmail.store.models import DeliveryStatus, RunStatus
from segmail.store.read import run_totals, runs_totals

_FINISHED = (RunStatus.SUCCEEDED, RunStatus.FAILED)


class FailureThresholdExceeded(SegmailError):
    """More mails failed than the mailing's threshold allows, some are still pending, or the
    bounce or complaint rate is above its limit."""


def over_limits(totals: dict) -> dict[str, str]:
    """The rate limits a run's totals exceed: rate name -> a sentence saying by how much."""
    config = settings.current()
    limits = {"bounce_rate": config.max_bounce_rate, "complaint_rate": config.max_complaint_rate}
    return {
        rate: f"{rate.replace('_', ' ')} {totals[rate]:.2%} is above {limit:.2%}"
        for rate, limit in limits.items()
        if totals.get(rate, 0.0) > limit
    }


def _failures(totals: dict, mailing: Mailing) -> list[str]:
    sent, failed, pending = (
        totals[s] for s in (DeliveryStatus.SENT, DeliveryStatus.FAILED, DeliveryStatus.PENDING)
    )
    statuses = totals.get("statuses", {})  # an SMS whose delivery report arrived is attempted too
    reported = statuses.get(DeliveryStatus.DELIVERED, 0) + statuses.get(DeliveryStatus.EXPIRED, 0)
    attempted = sent + totals.get(DeliveryStatus.BOUNCED, 0) + reported + failed
    share = failed / attempted if attempted else 0.0
    problems = []
    if share > mailing.failure_threshold or pending > 0:
        problems.append(
            f"{failed} of {attempted} mails failed ({share:.1%}; threshold {mailing.failure_threshold:.1%}),"
            f" {pending} pending"
        )
    return problems + list(totals["over_limits"].values())


def summarize_run(run_id: int, *, mailing: Mailing, engine: Engine | None = None) -> dict:
    """Store the run's totals; raise FailureThresholdExceeded when too many mails failed or the
    bounce or complaint rate (of the reports read so far) is above its limit."""
    engine = engine or default_engine()
    totals = run_totals(run_id, engine=engine)
    totals["over_limits"] = over_limits(totals)
    problems = _failures(totals, mailing)
    with engine.begin() as conn:
        conn.execute(
            text(
                # A rejected run stays rejected (its mails were skipped at approval, none sent).
                "UPDATE segmail_mailing_runs SET totals = :t, finished_at = :now,"
                " status = CASE WHEN status = :rejected THEN status ELSE :s END WHERE id = :r"
            ),
            {
                "t": json.dumps(totals),
                "s": RunStatus.FAILED if problems else RunStatus.SUCCEEDED,
                "rejected": RunStatus.REJECTED,
                "now": datetime.now(UTC),
                "r": run_id,
            },
        )
    if problems:
        raise FailureThresholdExceeded(f"run {run_id}: " + "; ".join(problems))
    return totals


def refresh_totals(run_ids: set[int] | list[int], *, engine: Engine | None = None) -> dict[int, list[str]]:
    """Store the totals of finished runs again (after feedback arrived); return the runs that have
    crossed a rate limit with this refresh, with the limits they crossed."""
    engine = engine or default_engine()
    if not run_ids:
        return {}
    with engine.connect() as conn:
        stored = dict(
            conn.execute(
                text(
                    "SELECT id, totals FROM segmail_mailing_runs WHERE id IN :ids AND status IN :done"
                ).bindparams(bindparam("ids", expanding=True), bindparam("done", expanding=True)),
                {"ids": sorted(run_ids), "done": list(_FINISHED)},
            ).all()
        )
    if not stored:
        return {}
    fresh = runs_totals(sorted(stored), engine=engine)
    crossed = {}
    for run_id, totals in fresh.items():
        totals["over_limits"] = over_limits(totals)
        before = json.loads(stored[run_id] or "{}").get("over_limits") or {}
        if new := [sentence for rate, sentence in totals["over_limits"].items() if rate not in before]:
            crossed[run_id] = new
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE segmail_mailing_runs SET totals = :t WHERE id = :r"),
            [{"t": json.dumps(totals), "r": run_id} for run_id, totals in fresh.items()],
        )
    return crossed
