"""A contact's activity log: one line per (run, contact, kind), written once; a repeat changes nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, text

from segmail.store.models import ActivityKind

_INSERT = text(
    "INSERT INTO segmail_activity_log (contact_id, occurred_at, kind, mailing, mailing_run_id, detail)"
    " VALUES (:contact, :at, :kind, :mailing, :run, :detail) ON CONFLICT DO NOTHING"
)


@dataclass(frozen=True)
class ActivityEntry:
    contact_id: int
    kind: ActivityKind
    at: datetime
    mailing: str | None
    mailing_run_id: int | None
    detail: str | None = None


def log_activity(conn: Connection, entry: ActivityEntry) -> bool:
    """Add the line unless the contact already has one of this kind for this run; True when added."""
    return (
        conn.execute(
            _INSERT,
            {
                "contact": entry.contact_id,
                "at": entry.at,
                "kind": entry.kind.value,
                "mailing": entry.mailing,
                "run": entry.mailing_run_id,
                "detail": entry.detail[:2000] if entry.detail else None,
            },
        ).rowcount
        == 1
    )
