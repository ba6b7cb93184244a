"""Segments and salespeople: the actions behind `segmail segments ...`, `salespeople ...` and the
`segments_admin` DAG. Each function is one transaction and raises SegmailError on user mistakes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, delete, func, select
from sqlalchemy.orm import Session

from segmail.db import session_scope
from segmail.errors import AlreadyExists, NotFound, SegmailError
from segmail.models import Contact, Membership, Salesperson, Segment


def _now() -> datetime:
    return datetime.now(UTC)


def add_salesperson(*, code: str, name: str, email: str | None, engine: Engine | None = None) -> Salesperson:
    """Add or update a salesperson (codes are upper-case, as in the ERP)."""
    from segmail.validate import check_email

    code = code.strip().upper()
    if not code:
        raise SegmailError("a salesperson needs a code")
    if email:
        email, reason = check_email(email.strip())
        if reason:
            raise SegmailError(f"invalid e-mail address for salesperson {code}: {reason}")
    with session_scope(engine) as session:
        person = session.scalar(select(Salesperson).where(Salesperson.code == code))
        if person is None:
            person = Salesperson(code=code, name=name, email=email, created_at=_now())
            session.add(person)
        else:
            person.name, person.email = name, email
        return person


def list_salespeople(*, engine: Engine | None = None) -> list[dict]:
    with session_scope(engine) as session:
        return [
            {"code": p.code, "name": p.name, "email": p.email or ""}
            for p in session.scalars(select(Salesperson).order_by(Salesperson.code))
        ]


def _salesperson_id(session: Session, code: str | None) -> int | None:
    if not code:
        return None
    person = session.scalar(select(Salesperson).where(Salesperson.code == code.strip().upper()))
    if person is None:
        raise NotFound(f"no salesperson with code {code!r}; add one with `segmail salespeople add`")
    return person.id


def get_segment(session: Session, name: str) -> Segment:
    segment = session.scalar(select(Segment).where(Segment.name_key == name.strip().casefold()))
    if segment is None:
        raise NotFound(f"no segment named {name!r}")
    return segment


def create_segment(
    *, name: str, salesperson: str | None = None, description: str | None = None, engine: Engine | None = None
) -> Segment:
    name = name.strip()
    if not name or ";" in name:
        raise SegmailError(
            "a segment name must be non-empty and may not contain ';' (the import's separator)"
        )
    with session_scope(engine) as session:
        if session.scalar(select(Segment).where(Segment.name_key == name.casefold())):
            raise AlreadyExists(f"segment {name!r} already exists")
        segment = Segment(
            name=name,
            name_key=name.casefold(),
            description=description,
            salesperson_id=_salesperson_id(session, salesperson),
            created_at=_now(),
        )
        session.add(segment)
        return segment


def rename_segment(*, old: str, new: str, engine: Engine | None = None) -> None:
    new = new.strip()
    if not new or ";" in new:
        raise SegmailError("a segment name must be non-empty and may not contain ';'")
    with session_scope(engine) as session:
        segment = get_segment(session, old)
        clash = session.scalar(select(Segment).where(Segment.name_key == new.casefold()))
        if clash is not None and clash.id != segment.id:
            raise AlreadyExists(f"segment {new!r} already exists")
        segment.name, segment.name_key = new, new.casefold()


def delete_segment(*, name: str, engine: Engine | None = None) -> int:
    """Delete a segment and its memberships; contacts stay. Returns how many members it had."""
    with session_scope(engine) as session:
        segment = get_segment(session, name)
        members = session.execute(delete(Membership).where(Membership.segment_id == segment.id)).rowcount
        session.delete(segment)
        return members


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
        get_segment(session, name).salesperson_id = _salesperson_id(session, salesperson)


@dataclass
class AssignResult:
    matched: int
    changed: int
    not_found: list[str]


def read_keys(path: Path) -> list[str]:
    """Keys from a file: one external ID or e-mail per line (first cell); a header line is skipped."""
    from segmail.csvfile import detect_delimiter, detect_encoding, header_key

    if not path.is_file():
        raise NotFound(f"no such file: {path}")
    text_value = path.read_text(encoding=detect_encoding(path))
    lines = [line for line in text_value.splitlines() if line.strip()]
    if not lines:
        return []
    delimiter = detect_delimiter(lines[0])
    keys = [line.split(delimiter)[0].strip().strip('"') for line in lines]
    if header_key(keys[0]) in {"externalid", "externeid", "email", "key", "id"}:
        keys = keys[1:]
    return [k for k in keys if k]


def _contacts_for_keys(session: Session, keys: list[str]) -> tuple[set[int], list[str]]:
    ids: set[int] = set()
    missing: list[str] = []
    for start in range(0, len(keys), 500):
        batch = keys[start : start + 500]
        emails = [k.casefold() for k in batch if "@" in k]
        externals = [k for k in batch if "@" not in k]
        found = session.execute(
            select(Contact.id, Contact.external_id, Contact.email_key).where(
                Contact.external_id.in_(externals) | Contact.email_key.in_(emails)
            )
        ).all()
        seen = {ext for _, ext, _ in found} | {email for _, _, email in found}
        ids.update(cid for cid, _, _ in found)
        missing.extend(k for k in batch if (k.casefold() if "@" in k else k) not in seen)
    return ids, missing


def assign_segment(
    *, name: str, keys: list[str], remove: bool = False, engine: Engine | None = None
) -> AssignResult:
    """Bulk add (or with remove=True take away) a segment for the contacts named by keys."""
    with session_scope(engine) as session:
        segment = get_segment(session, name)
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


ADMIN_ACTIONS = (
    "list_segments",
    "create_segment",
    "rename_segment",
    "delete_segment",
    "assign",
    "unassign",
    "set_segment_salesperson",
    "add_salesperson",
    "list_salespeople",
)


def run_action(
    *,
    action: str,
    segment: str = "",
    new_name: str = "",
    salesperson: str = "",
    description: str = "",
    keys: str = "",
    keys_file: str = "",
    salesperson_name: str = "",
    salesperson_email: str = "",
    engine: Engine | None = None,
) -> dict:
    """One admin action from the `segments_admin` trigger form; returns a small summary for XCom."""

    def need(value: str, label: str) -> str:
        if not value.strip():
            raise SegmailError(f"action {action!r} needs {label}")
        return value.strip()

    if action == "list_segments":
        return {"segments": list_segments(engine=engine)}
    if action == "list_salespeople":
        return {"salespeople": list_salespeople(engine=engine)}
    if action == "create_segment":
        create_segment(
            name=need(segment, "a segment name"),
            salesperson=salesperson or None,
            description=description or None,
            engine=engine,
        )
        return {"created": segment.strip()}
    if action == "rename_segment":
        rename_segment(old=need(segment, "the segment name"), new=need(new_name, "a new name"), engine=engine)
        return {"renamed": segment.strip(), "to": new_name.strip()}
    if action == "delete_segment":
        return {
            "deleted": segment.strip(),
            "memberships_removed": delete_segment(name=need(segment, "the segment name"), engine=engine),
        }
    if action == "set_segment_salesperson":
        set_segment_salesperson(
            name=need(segment, "the segment name"), salesperson=salesperson or None, engine=engine
        )
        return {"segment": segment.strip(), "salesperson": salesperson.strip().upper()}
    if action == "add_salesperson":
        person = add_salesperson(
            code=need(salesperson, "a salesperson code"),
            name=salesperson_name or salesperson,
            email=salesperson_email or None,
            engine=engine,
        )
        return {"salesperson": person.code}
    if action in ("assign", "unassign"):
        key_list = [k.strip() for k in keys.replace(",", "\n").splitlines() if k.strip()]
        if keys_file.strip():
            key_list += read_keys(Path(keys_file.strip()))
        if not key_list:
            raise SegmailError(f"action {action!r} needs keys (external IDs or e-mails) or a keys file")
        result = assign_segment(
            name=need(segment, "the segment name"), keys=key_list, remove=action == "unassign", engine=engine
        )
        return {"matched": result.matched, "changed": result.changed, "not_found": result.not_found[:100]}
    raise SegmailError(f"unknown action {action!r}; choose one of {', '.join(ADMIN_ACTIONS)}")
