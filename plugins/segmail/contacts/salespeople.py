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


def international_mobile(value: str, *, whose: str) -> str:
    """A mobile number given in international form (no country goes with it) in E.164."""
    import phonenumbers

    from segmail.imports.phones import mobile_e164

    value = value.strip()
    try:
        region = phonenumbers.region_code_for_number(phonenumbers.parse(value, None))
    except phonenumbers.NumberParseException:
        region = None
    number, reason = mobile_e164(value, region) if region else (None, None)
    if number is None:
        raise SegmailError(
            f"invalid mobile number for {whose}: {reason or repr(value)}"
            " (give it in international form, e.g. +43 664 1234567)"
        )
    return number


def add_salesperson(
    *,
    code: str,
    name: str,
    email: str | None,
    mobile: str | None = None,
    engine: Engine | None = None,
) -> Salesperson:
    """Add or update a salesperson (codes are upper-case, as in the ERP). `mobile` (where an SMS
    mailing's test message goes): None keeps the stored one, "" removes it."""
    from segmail.addresses import check_email

    code = code.strip().upper()
    if not code:
        raise SegmailError("a salesperson needs a code")
    if email:
        email, reason = check_email(email.strip())
        if reason:
            raise SegmailError(f"invalid e-mail address for salesperson {code}: {reason}")
    number = international_mobile(mobile, whose=f"salesperson {code}") if mobile else None
    with session_scope(engine) as session:
        person = session.scalar(select(Salesperson).where(Salesperson.code == code))
        if person is None:
            person = Salesperson(code=code, name=name, email=email, mobile_e164=number, created_at=_now())
            session.add(person)
        else:
            person.name, person.email = name, email
            if mobile is not None:
                person.mobile_e164 = number
        return person


def list_salespeople(*, engine: Engine | None = None) -> list[dict]:
    with session_scope(engine) as session:
        return [
            {"code": p.code, "name": p.name, "email": p.email or "", "mobile": p.mobile_e164 or ""}
            for p in session.scalars(select(Salesperson).order_by(Salesperson.code))
        ]


def salesperson_id(session: Session, code: str | None) -> int | None:
    if not code:
        return None
    person = session.scalar(select(Salesperson).where(Salesperson.code == code.strip().upper()))
    if person is None:
        raise NotFound(f"no salesperson with code {code!r}; add one with `segmail salespeople add`")
    return person.id
