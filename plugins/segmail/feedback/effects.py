"""What a report does to segmail's records, inside the caller's transaction (one per report).

- hard bounce: the delivery becomes `bounced` (`bounce = hard`), the address is suppressed;
- soft bounce: the delivery is marked `bounce = soft`; the address is suppressed once
  `soft_bounce_limit` of its mails in a row soft-bounced (see `soft_bounce_streak`);
- complaint: every contact with the address is opted out (source `complaint`), the address is
  suppressed and the delivery gets `complained_at`;
- `mailto:` unsubscribe: the same opt-out as a one-click unsubscribe (source `mailto`).

Each adds a line to the contact's activity log, dated with the report's date and saying why.
Nothing is deleted, and every step is idempotent on its own: a second report about the same mail
(a delay warning, then the final failure) changes only what the first left undone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, text

from segmail.addresses import email_key
from segmail.contacts.activity import ActivityEntry, log_activity
from segmail.contacts.optouts import opt_out_address
from segmail.contacts.suppressions import SuppressionRecord, suppress
from segmail.feedback.matching import Target
from segmail.feedback.reports import Failure, Report, ReportKind, Severity
from segmail.feedback.unsubscribe import find_recipient, opt_out_recipient
from segmail.store.models import ActivityKind, BounceKind, DeliveryStatus, OptOutSource

_HARD = text(
    "UPDATE segmail_deliveries SET status = :bounced, bounce = :hard, bounced_at = :at, reason = :reason,"
    " updated_at = :now WHERE id = :id AND status = :sent"
)
_SOFT = text(
    "UPDATE segmail_deliveries SET bounce = :soft, bounced_at = :at, reason = :reason, updated_at = :now"
    " WHERE id = :id AND status = :sent AND bounce IS NULL"
)
_COMPLAINED = text(
    "UPDATE segmail_deliveries SET complained_at = :at, updated_at = :now"
    " WHERE id = :id AND complained_at IS NULL"
)
# The mails that went out to an address, in the order they were sent (via the contacts that have
# the address now: segmail_contacts.email_key and segmail_deliveries.contact_id are indexed).
_ADDRESS_HISTORY = text(
    "SELECT d.id, d.bounce FROM segmail_contacts c JOIN segmail_deliveries d ON d.contact_id = c.id"
    " WHERE c.email_key = :key AND LOWER(d.email) = :key AND d.status IN (:sent, :bounced)"
    " ORDER BY d.sent_at, d.id"
)


@dataclass(frozen=True)
class Effect:
    detail: str  # what was done, for the report's row
    suppressed: bool = False  # this report put the address on the suppression list


def apply_report(
    conn: Connection, report: Report, target: Target, *, at: datetime, soft_limit: int
) -> Effect:
    if report.kind == ReportKind.BOUNCE:
        failure = failure_for(report, target)
        if failure.severity == Severity.HARD:
            return _hard_bounce(conn, target, failure, at=at)
        return _soft_bounce(conn, target, failure, at=at, limit=soft_limit)
    if report.kind == ReportKind.COMPLAINT:
        return _complaint(conn, report, target, at=at)
    if report.kind == ReportKind.UNSUBSCRIBE:
        found = find_recipient(conn, target.delivery_id)
        changed = opt_out_recipient(conn, found, source=OptOutSource.MAILTO, at=at)
        return Effect("unsubscribed (mailto)" if changed else "already unsubscribed", suppressed=changed)
    raise ValueError(f"a {report.kind} report has no effects")


def failure_for(report: Report, target: Target) -> Failure:
    """The failure about the mailed address (the worst, when there are several)."""
    address = (target.email or "").lower()
    pool = [f for f in report.failures if address in f.addresses] or list(report.failures)
    return next((f for f in pool if f.severity == Severity.HARD), pool[0])


def _params(target: Target, at: datetime, reason: str) -> dict:
    return {
        "id": target.delivery_id,
        "at": at,
        "now": datetime.now(UTC),
        "reason": reason[:2000],
        "sent": DeliveryStatus.SENT,
        "bounced": DeliveryStatus.BOUNCED,
        "hard": BounceKind.HARD,
        "soft": BounceKind.SOFT,
    }


def _activity(conn: Connection, target: Target, kind: ActivityKind, at: datetime, detail: str) -> None:
    log_activity(
        conn, ActivityEntry(target.contact_id, kind, at, target.mailing, target.mailing_run_id, detail)
    )


def _suppress(conn: Connection, target: Target, reason: str, source: OptOutSource, at: datetime) -> bool:
    if not target.email:
        return False
    return suppress(conn, SuppressionRecord(target.email, reason, source, target.mailing_run_id, at))


def _hard_bounce(conn: Connection, target: Target, failure: Failure, *, at: datetime) -> Effect:
    reason = f"hard bounce: {failure.summary}"
    conn.execute(_HARD, _params(target, at, reason))
    suppressed = _suppress(conn, target, reason, OptOutSource.HARD_BOUNCE, at)
    _activity(conn, target, ActivityKind.BOUNCE, at, reason)
    return Effect(reason + ("; address suppressed" if suppressed else ""), suppressed)


def _soft_bounce(conn: Connection, target: Target, failure: Failure, *, at: datetime, limit: int) -> Effect:
    reason = f"soft bounce: {failure.summary}"
    conn.execute(_SOFT, _params(target, at, reason))
    _activity(conn, target, ActivityKind.SOFT_BOUNCE, at, reason)
    streak = soft_bounce_streak(conn, target)
    if streak < limit:
        return Effect(f"{reason} ({streak} of {limit} in a row)")
    suppression = f"{streak} soft bounces in a row, the last: {failure.summary}"
    suppressed = _suppress(conn, target, suppression, OptOutSource.SOFT_BOUNCES, at)
    return Effect(f"{reason}; {suppression}" + ("; address suppressed" if suppressed else ""), suppressed)


def soft_bounce_streak(conn: Connection, target: Target) -> int:
    """How many of the address's mails in a row, around this one, soft-bounced.

    The address's sent mails are taken in the order they were sent; the streak is the unbroken run
    of soft-bounced mails that contains this one. A successful delivery — a mail the relay accepted
    and for which no bounce has been read — breaks it. Reports may arrive in any order: a late
    report fills its mail's place in the sequence, and the streak is counted again."""
    if not target.email:
        return 1
    rows = conn.execute(
        _ADDRESS_HISTORY,
        {
            "key": email_key(target.email),
            "sent": DeliveryStatus.SENT,
            "bounced": DeliveryStatus.BOUNCED,
        },
    ).all()
    soft = [bounce == BounceKind.SOFT for _, bounce in rows]
    ids = [delivery_id for delivery_id, _ in rows]
    if target.delivery_id not in ids:
        return 1
    here = ids.index(target.delivery_id)
    start, end = here, here
    while start > 0 and soft[start - 1]:
        start -= 1
    while end < len(soft) - 1 and soft[end + 1]:
        end += 1
    return end - start + 1


def _complaint(conn: Connection, report: Report, target: Target, *, at: datetime) -> Effect:
    reporter = report.sender.rpartition("@")[2] or "a feedback loop"
    reason = f"spam complaint ({report.feedback_type or 'abuse'}) reported by {reporter}"
    if target.email:
        opt_out_address(
            conn,
            address=target.email,
            source=OptOutSource.COMPLAINT,
            mailing_run_id=target.mailing_run_id,
            at=at,
        )
    suppressed = _suppress(conn, target, reason, OptOutSource.COMPLAINT, at)
    conn.execute(_COMPLAINED, {"id": target.delivery_id, "at": at, "now": datetime.now(UTC)})
    _activity(conn, target, ActivityKind.COMPLAINT, at, reason)
    return Effect(reason + ("; opted out and suppressed" if suppressed else ""), suppressed)
