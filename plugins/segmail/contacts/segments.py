"""Segments: create, rename, delete (contacts stay), list and bulk-assign. Each function is one
transaction and raises SegmailError on user mistakes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, delete, func, select
from sqlalchemy.orm import Session

from segmail.addresses import email_key
from segmail.contacts.salespeople import salesperson_id
from segmail.errors import AlreadyExists, NotFound, SegmailError
from segmail.imports.columns import BY_KEY, SEGMENT_SEPARATOR
from segmail.store.db import session_scope
from segmail.store.models import Contact, Membership, Salesperson, Segment


def _now() -> datetime:
    return datetime.now(UTC)


def get_segment(session: Session, name: str, *, lock: bool = False) -> Segment:
    """`lock`: a delete of the segment waits until this transaction ends (memberships have no
    foreign key that would make it wait)."""
    query = select(Segment).where(Segment.name_key == name.strip().casefold())
    segment = session.scalar(query.with_for_update(key_share=True, read=True) if lock else query)
    if segment is None:
        raise NotFound(f"no segment named {name!r}")
    return segment


def _valid_name(name: str) -> str:
    name = name.strip()
    if not name or SEGMENT_SEPARATOR in name:
        raise SegmailError(
            f"a segment name must be non-empty and may not contain {SEGMENT_SEPARATOR!r}"
            " (the import's separator)"
        )
    return name


def create_segment(
    *, name: str, salesperson: str | None = None, description: str | None = None, engine: Engine | None = None
) -> Segment:
    name = _valid_name(name)
    with session_scope(engine) as session:
        if session.scalar(select(Segment).where(Segment.name_key == name.casefold())):
            raise AlreadyExists(f"segment {name!r} already exists")
        segment = Segment(
            name=name,
            name_key=name.casefold(),
            description=description,
            salesperson_id=salesperson_id(session, salesperson),
            created_at=_now(),
        )
        session.add(segment)
        return segment


def rename_segment(*, old: str, new: str, engine: Engine | None = None) -> None:
    new = _valid_name(new)
    with session_scope(engine) as session:
        segment = get_segment(session, old)
        clash = session.scalar(select(Segment).where(Segment.name_key == new.casefold()))
        if clash is not None and clash.id != segment.id:
            raise AlreadyExists(f"segment {new!r} already exists")
        segment.name, segment.name_key = new, new.casefold()


def delete_segment(*, name: str, engine: Engine | None = None) -> int:
    """Delete a segment and its memberships; contacts stay. Returns how many members it had.

    The segment goes first: that waits for an import that locked it (imports.resolve.
    lock_named_segments) to commit, so the memberships deleted next include the ones it added
    (memberships have no foreign keys that would cascade)."""
    with session_scope(engine) as session:
        segment_id = get_segment(session, name).id
        session.execute(delete(Segment).where(Segment.id == segment_id))
        return session.execute(delete(Membership).where(Membership.segment_id == segment_id)).rowcount


def list_segments(*, engine: Engine | None = None) -> list[dict]:
    with session_scope(engine) as session:
        members = (
            select(Membership.segment_id, func.count().label("n")).group_by(Membership.segment_id).subquery()
        )
        rows = session.execute(
            select(Segment.name, Salesperson.code, Segment.description, func.coalesce(members.c.n, 0))
            .outerjoin(Salesperson, Salesperson.id == Segment.salesperson_id)
            .outerjoin(members, members.c.segment_id == Segment.id)
            .order_by(Segment.name_key)
        ).all()
        return [
            {"name": n, "salesperson": sp or "", "description": d or "", "members": int(c)}
            for n, sp, d, c in rows
        ]


def set_segment_salesperson(*, name: str, salesperson: str | None, engine: Engine | None = None) -> None:
    with session_scope(engine) as session:
        get_segment(session, name).salesperson_id = salesperson_id(session, salesperson)


@dataclass
class AssignResult:
    matched: int
    changed: int
    not_found: list[str]


def read_keys(path: Path) -> list[str]:
    """Keys from a file: one external ID or e-mail per line (first cell); a header line is skipped."""
    from segmail.imports.csvfile import detect_delimiter, detect_encoding, header_key

    if not path.is_file():
        raise NotFound(f"no such file: {path}")
    text_value = path.read_text(encoding=detect_encoding(path))
    lines = [line for line in text_value.splitlines() if line.strip()]
    if not lines:
        return []
    delimiter = detect_delimiter(lines[0])
    keys = [line.split(delimiter)[0].strip().strip('"') for line in lines]
    headers = {header_key(title) for title in BY_KEY["external_id"].headers} | {"email", "key"}
    if header_key(keys[0]) in headers:
        keys = keys[1:]
    return [k for k in keys if k]


def _contacts_for_keys(session: Session, keys: list[str]) -> tuple[set[int], list[str]]:
    ids: set[int] = set()
    missing: list[str] = []
    for start in range(0, len(keys), 500):
        batch = keys[start : start + 500]
        emails = [email_key(k) for k in batch if "@" in k]
        externals = [k for k in batch if "@" not in k]
        found = session.execute(
            select(Contact.id, Contact.external_id, Contact.email_key).where(
                Contact.external_id.in_(externals) | Contact.email_key.in_(emails)
            )
        ).all()
        seen = {ext for _, ext, _ in found} | {email for _, _, email in found}
        ids.update(cid for cid, _, _ in found)
        missing.extend(k for k in batch if (email_key(k) if "@" in k else k) not in seen)
    return ids, missing


def assign_segment(
    *, name: str, keys: list[str], remove: bool = False, engine: Engine | None = None
) -> AssignResult:
    """Bulk add (or with remove=True take away) a segment for the contacts named by keys."""
    with session_scope(engine) as session:
        segment = get_segment(session, name, lock=True)
        ids, missing = _contacts_for_keys(session, keys)
        current = set(
            session.scalars(select(Membership.contact_id).where(Membership.segment_id == segment.id))
        )
        if remove:
            gone = ids & current
            if gone:
                session.execute(
                    delete(Membership).where(
                        Membership.segment_id == segment.id, Membership.contact_id.in_(gone)
                    )
                )
            return AssignResult(len(ids), len(gone), missing)
        new = sorted(ids - current)
        session.add_all(Membership(contact_id=cid, segment_id=segment.id) for cid in new)
        return AssignResult(len(ids), len(new), missing)
