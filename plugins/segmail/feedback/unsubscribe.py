"""Unsubscribes from a signed link or a `mailto:` reply: the address is opted out at once.

An opt-out belongs to the address: every contact sharing it is opted out (with when, the source
and the run), the address goes on the suppression list, the delivery row gets `unsubscribed_at`
and the contact's activity log an `unsubscribe` row. Everything happens in one transaction and is
idempotent: a repeated click, a link scanner's second POST or a re-read report changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, text

from segmail.contacts.activity import ActivityEntry, log_activity
from segmail.contacts.optouts import opt_out_address
from segmail.contacts.suppressions import SuppressionRecord, suppress
from segmail.errors import NotFound
from segmail.store.db import default_engine
from segmail.store.models import ActivityKind, OptOutSource


@dataclass(frozen=True)
class Recipient:
    """What the unsubscribe page needs to know about the delivery behind a token, and no more."""

    delivery_id: int
    mailing_run_id: int
    contact_id: int
    email: str | None
    contact_language: str | None
    mailing: str
    unsubscribed_at: datetime | None


def find_recipient(conn: Connection, delivery_id: int) -> Recipient | None:
    row = conn.execute(
        text(
            "SELECT d.id, d.mailing_run_id, d.contact_id, d.email, c.language, r.mailing, d.unsubscribed_at"
            " FROM segmail_deliveries d JOIN segmail_mailing_runs r ON r.id = d.mailing_run_id"
            " LEFT JOIN segmail_contacts c ON c.id = d.contact_id WHERE d.id = :id"
        ),
        {"id": delivery_id},
    ).first()
    return Recipient(*row) if row else None


def recipient(delivery_id: int, *, engine: Engine | None = None) -> Recipient | None:
    with (engine or default_engine()).connect() as conn:
        return find_recipient(conn, delivery_id)


def unsubscribe(
    delivery_id: int,
    *,
    source: OptOutSource,
    engine: Engine | None = None,
    now: datetime | None = None,
) -> bool:
    """Opt the delivery's address out; True when this call changed something, False for a repeat."""
    now = now or datetime.now(UTC)
    with (engine or default_engine()).begin() as conn:
        found = find_recipient(conn, delivery_id)
        if found is None:
            raise NotFound(f"no delivery {delivery_id}")
        return opt_out_recipient(conn, found, source=source, at=now)


def opt_out_recipient(conn: Connection, found: Recipient, *, source: OptOutSource, at: datetime) -> bool:
    """`unsubscribe` inside the caller's transaction (the bounce mailbox's `mailto:` reports use it)."""
    if found.unsubscribed_at is not None:
        return False
    if found.email:
        opt_out_address(conn, address=found.email, source=source, mailing_run_id=found.mailing_run_id, at=at)
        suppress(
            conn,
            SuppressionRecord(found.email, f"opted out ({source.value})", source, found.mailing_run_id, at),
        )
    conn.execute(
        text("UPDATE segmail_deliveries SET unsubscribed_at = :at WHERE id = :id"),
        {"at": at, "id": found.delivery_id},
    )
    entry = ActivityEntry(
        found.contact_id,
        ActivityKind.UNSUBSCRIBE,
        at,
        found.mailing,
        found.mailing_run_id,
        detail=f"unsubscribed ({source.value})",
    )
    log_activity(conn, entry)
    return True
