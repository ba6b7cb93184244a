"""Reading the bounce mailbox: batch by batch, one transaction per report, then the IMAP moves.

Exactly-once rests on the processed-reports table: a report's row (keyed by its own Message-ID) is
written in the same transaction as its effects, so a report is applied entirely or not at all, and a
second reading finds the row and changes nothing. The IMAP move comes after the commit; a crash in
between leaves the message in the folder, and the rerun only moves it. Messages are never deleted:
applied reports go to `segmail/processed`; auto-replies, unrecognised messages and reports that
match no delivery (forged token, a test mail, a stranger's bounce) to `segmail/unrecognised`.
At the end the stored totals of every mailing run that received reports are refreshed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, text

from segmail.feedback.effects import Effect, apply_report, failure_for
from segmail.feedback.mailbox import Folder, Mailbox
from segmail.feedback.matching import PURPOSES, Match, match_report
from segmail.feedback.reports import FeedbackAddresses, Report, ReportKind, classify
from segmail.feedback.tokens import TokenSigner
from segmail.store.db import default_engine
from segmail.store.models import FeedbackOutcome

log = logging.getLogger(__name__)

_INSERT = text(
    "INSERT INTO segmail_feedback_reports (report_key, kind, outcome, severity, delivery_id, mailing_run_id,"
    " contact_id, address, status_code, action, diagnostic, detector, confidence, sender, subject, detail,"
    " reported_at, processed_at) VALUES (:report_key, :kind, :outcome, :severity, :delivery_id,"
    " :mailing_run_id, :contact_id, :address, :status_code, :action, :diagnostic, :detector, :confidence,"
    " :sender, :subject, :detail, :reported_at, :processed_at) ON CONFLICT (report_key) DO NOTHING"
)
_DETAIL = text("UPDATE segmail_feedback_reports SET detail = :detail WHERE report_key = :key")
_STORED = text(
    "SELECT kind, outcome, severity, mailing_run_id FROM segmail_feedback_reports WHERE report_key = :key"
)


@dataclass(frozen=True)
class FeedbackContext:
    """How reports are read: where they are addressed, the key that verifies their tokens, the limit."""

    addresses: FeedbackAddresses
    signer: TokenSigner | None
    soft_bounce_limit: int = 3

    @classmethod
    def from_settings(cls) -> FeedbackContext:
        from segmail import settings

        config = settings.current()
        keys = settings.signing_keys()
        signer = TokenSigner(keys, max_age_days=config.token_max_age_days) if keys else None
        return cls(FeedbackAddresses.from_settings(), signer, config.soft_bounce_limit)


@dataclass(frozen=True)
class Processed:
    """What became of one message: its class for the counts, and the folder it goes to."""

    kind: str
    outcome: FeedbackOutcome
    severity: str | None = None
    mailing_run_id: int | None = None
    suppressed: bool = False
    repeat: bool = False

    @property
    def folder(self) -> Folder:
        return Folder.PROCESSED if self.outcome == FeedbackOutcome.APPLIED else Folder.UNRECOGNISED

    @property
    def counted_as(self) -> str:
        if self.repeat:
            return "already_processed"
        if self.outcome == FeedbackOutcome.UNMATCHED:
            return "unmatched"
        if self.outcome == FeedbackOutcome.IGNORED:
            return "auto_replies" if self.kind == ReportKind.AUTO_REPLY else "unrecognised"
        if self.kind == ReportKind.BOUNCE:
            return f"{self.severity}_bounces"
        return {ReportKind.COMPLAINT: "complaints", ReportKind.UNSUBSCRIBE: "unsubscribes"}[self.kind]


# ---------------------------------------------------------------- one report


def _outcome(report: Report, match: Match | None) -> FeedbackOutcome:
    if report.kind not in PURPOSES:
        return FeedbackOutcome.IGNORED
    return FeedbackOutcome.APPLIED if match and match.target else FeedbackOutcome.UNMATCHED


def _row(report: Report, match: Match | None, outcome: FeedbackOutcome, now: datetime) -> dict:
    target = match.target if match else None
    failure = failure_for(report, target) if target and report.failures else None
    failure = failure or (report.failures[0] if report.failures else None)
    return {
        "report_key": report.key,
        "kind": report.kind.value,
        "outcome": outcome.value,
        "severity": failure.severity.value if failure else None,
        "delivery_id": target.delivery_id if target else None,
        "mailing_run_id": target.mailing_run_id if target else None,
        "contact_id": target.contact_id if target else None,
        "address": (target.email if target else None)
        or (report.addresses[0][:320] if report.addresses else None),
        "status_code": failure.status[:20] if failure and failure.status else None,
        "action": failure.action[:20] if failure and failure.action else None,
        "diagnostic": failure.diagnostic[:2000] if failure and failure.diagnostic else None,
        "detector": report.detector,
        "confidence": report.confidence.value if report.confidence else None,
        "sender": report.sender[:320] or None,
        "subject": report.subject or None,
        "detail": report.note or (match.how if match and not target else None),
        "reported_at": report.date,
        "processed_at": now,
    }


def _stored(conn: Connection, key: str) -> Processed:
    kind, outcome, severity, run_id = conn.execute(_STORED, {"key": key}).one()
    return Processed(kind, FeedbackOutcome(outcome), severity, run_id, repeat=True)


def record_report(
    conn: Connection, report: Report, *, context: FeedbackContext, now: datetime | None = None
) -> Processed:
    """Match, record and apply one classified report in the caller's transaction."""
    now = now or datetime.now(UTC)
    match = match_report(conn, report, context.signer) if report.kind in PURPOSES else None
    outcome = _outcome(report, match)
    row = _row(report, match, outcome, now)
    if conn.execute(_INSERT, row).rowcount == 0:
        return _stored(conn, report.key)
    effect = Effect(row["detail"] or "")
    if outcome == FeedbackOutcome.APPLIED:
        at = min(report.date, now) if report.date else now  # the report's date, never in the future
        effect = apply_report(conn, report, match.target, at=at, soft_limit=context.soft_bounce_limit)
        conn.execute(_DETAIL, {"detail": effect.detail[:2000], "key": report.key})
    return Processed(report.kind, outcome, row["severity"], row["mailing_run_id"], effect.suppressed)


def process_message(raw: bytes, *, context: FeedbackContext, engine: Engine | None = None) -> Processed:
    """Classify one message and apply it, in one transaction of its own."""
    report = classify(raw, context.addresses)
    with (engine or default_engine()).begin() as conn:
        return record_report(conn, report, context=context)


# ---------------------------------------------------------------- the mailbox


@dataclass
class Tally:
    """Counts per class over one reading of the mailbox (what crosses XCom)."""

    counts: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(
            (
                "messages",
                "hard_bounces",
                "soft_bounces",
                "complaints",
                "unsubscribes",
                "auto_replies",
                "unrecognised",
                "unmatched",
                "already_processed",
                "suppressed",
            ),
            0,
        )
    )
    runs: set[int] = field(default_factory=set)

    def add(self, processed: Processed) -> None:
        self.counts["messages"] += 1
        self.counts[processed.counted_as] += 1
        self.counts["suppressed"] += int(processed.suppressed)
        if processed.mailing_run_id is not None and processed.outcome == FeedbackOutcome.APPLIED:
            self.runs.add(processed.mailing_run_id)


def _process_batch(
    mailbox: Mailbox, uids: list[int], tally: Tally, *, context: FeedbackContext, engine: Engine
) -> None:
    """Process the batch's messages one by one, then move each done one; a failure on one message
    still moves those committed before it (and is raised after the moves)."""
    messages = mailbox.fetch(uids)
    moves: dict[Folder, list[int]] = {folder: [] for folder in Folder}
    try:
        for uid in uids:
            if uid not in messages:  # expunged by someone else meanwhile
                continue
            processed = process_message(messages[uid], context=context, engine=engine)
            tally.add(processed)
            moves[processed.folder].append(uid)
    finally:
        for folder, done in moves.items():
            mailbox.move(done, folder)


def process_mailbox(
    mailbox: Mailbox,
    *,
    context: FeedbackContext | None = None,
    engine: Engine | None = None,
    batch_size: int = 200,
    max_messages: int | None = None,
) -> Tally:
    """Read the mailbox until it is empty (or `max_messages` were read), `batch_size` at a time."""
    context = context or FeedbackContext.from_settings()
    engine = engine or default_engine()
    tally = Tally()
    seen: set[int] = set()
    with mailbox:
        while max_messages is None or tally.counts["messages"] < max_messages:
            room = (
                batch_size
                if max_messages is None
                else min(batch_size, max_messages - tally.counts["messages"])
            )
            uids = [uid for uid in mailbox.uids() if uid not in seen][:room]
            if not uids:
                break
            seen.update(uids)  # a message that could not be moved is not read twice in one run
            _process_batch(mailbox, uids, tally, context=context, engine=engine)
    return tally


# ---------------------------------------------------------------- the DAG's entry points

MAX_PER_RUN = 10_000  # one run's share; a bigger backlog is read by the next runs


def read_feedback(*, engine: Engine | None = None, max_messages: int | None = MAX_PER_RUN) -> dict:
    """Read the configured bounce mailbox, apply every report, refresh the touched runs' totals.
    Returns counts per class and the ids of runs that crossed a rate limit (references only)."""
    from segmail import settings
    from segmail.feedback.mailbox import configured_mailbox
    from segmail.mailings.summary import refresh_totals

    tally = process_mailbox(
        configured_mailbox(),
        context=FeedbackContext.from_settings(),
        engine=engine,
        batch_size=settings.current().feedback_batch_size,
        max_messages=max_messages,
    )
    crossed = refresh_totals(tally.runs, engine=engine)
    for run_id, limits in crossed.items():
        log.warning("mailing run %s: %s", run_id, "; ".join(limits))
    return {**tally.counts, "runs_updated": len(tally.runs), "crossed_limits": sorted(crossed)}


def summarize_feedback(counts: dict, *, engine: Engine | None = None) -> str:
    """The run's summary, one line per class; raises when a mailing run crossed a rate limit."""
    from segmail.errors import SegmailError
    from segmail.store.read import mailing_run_limits

    lines = [
        f"{name.replace('_', ' '):>18}: {value}" for name, value in counts.items() if name != "crossed_limits"
    ]
    summary = "\n".join(lines)
    crossed = mailing_run_limits(counts.get("crossed_limits") or [], engine=engine)
    if crossed:
        raise SegmailError(
            "mailing runs crossed a rate limit with the reports read now: "
            + "; ".join(f"run {run} ({mailing}): {', '.join(limits)}" for run, mailing, limits in crossed)
            + "\n"
            + summary
        )
    return summary
