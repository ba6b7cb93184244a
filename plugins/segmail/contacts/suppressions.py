"""The suppression list: addresses segmail never mails again (opted out, hard-bounced, complained).

It is kept per address, lower-cased, so it holds for every contact sharing the address, including
contacts imported later. Recording is idempotent: the first reason stays, a repeat changes nothing.
Imports never remove a suppression; only `segmail suppressions remove` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, text

from segmail.addresses import check_email, email_key
from segmail.errors import NotFound, SegmailError
from segmail.store.db import default_engine
from segmail.store.models import OptOutSource


@dataclass(frozen=True)
class SuppressionRecord:
    address: str
    reason: str
    source: OptOutSource
    mailing_run_id: int | None
    at: datetime


def suppress(conn: Connection, record: SuppressionRecord) -> bool:
    """Add the address unless it is already suppressed; True when this call added it."""
    inserted = conn.execute(
        text(
            "INSERT INTO segmail_suppressions (address_key, reason, source, mailing_run_id, created_at)"
            " VALUES (:key, :reason, :source, :run, :at) ON CONFLICT (address_key) DO NOTHING"
        ),
        {
            "key": email_key(record.address),
            "reason": record.reason[:2000],
            "source": record.source.value,
            "run": record.mailing_run_id,
            "at": record.at,
        },
    )
    return inserted.rowcount == 1


def suppressed_reason(conn: Connection, address: str) -> str | None:
    return conn.execute(
        text("SELECT reason FROM segmail_suppressions WHERE address_key = :key"),
        {"key": email_key(address)},
    ).scalar()


def list_suppressions(*, limit: int = 1000, engine: Engine | None = None) -> list[dict]:
    """Newest first (`segmail suppressions list`); the query lives with the page's in store/read.py."""
    from segmail.store.read import suppressions_page

    rows, _ = suppressions_page(engine or default_engine(), search=None, page=1, page_size=max(0, limit))
    return rows


def add_suppression(*, address: str, reason: str, engine: Engine | None = None) -> bool:
    """`segmail suppressions add`: a manual entry (e.g. an address a customer asked to drop by phone)."""
    normalized, problem = check_email(address.strip())
    if problem:
        raise SegmailError(f"{address!r} is not an e-mail address: {problem}")
    record = SuppressionRecord(
        normalized, reason or "added by hand", OptOutSource.MANUAL, None, datetime.now(UTC)
    )
    with (engine or default_engine()).begin() as conn:
        return suppress(conn, record)


def remove_suppression(*, address: str, engine: Engine | None = None) -> None:
    """Lift a suppression; the contacts' own opt-out (if any) stays until `contacts opt-in`."""
    with (engine or default_engine()).begin() as conn:
        deleted = conn.execute(
            text("DELETE FROM segmail_suppressions WHERE address_key = :key"),
            {"key": email_key(address)},
        ).rowcount
    if not deleted:
        raise NotFound(f"{address!r} is not on the suppression list")
