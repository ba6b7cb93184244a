"""Salespeople (codes upper-case, as in the ERP): the people a segment's test mail goes to."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from segmail.errors import NotFound, SegmailError
from segmail.store.db import session_scope
from segmail.store.models import Salesperson


def _now() -> datetime:
    return datetime.now(UTC)


def add_salesperson(*, code: str, name: str, email: str | None, engine: Engine | None = None) -> Salesperson:
    """Add or update a salesperson (codes are upper-case, as in the ERP)."""
    from segmail.addresses import check_email

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


def salesperson_id(session: Session, code: str | None) -> int | None:
    if not code:
        return None
    person = session.scalar(select(Salesperson).where(Salesperson.code == code.strip().upper()))
    if person is None:
        raise NotFound(f"no salesperson with code {code!r}; add one with `segmail salespeople add`")
    return person.id
