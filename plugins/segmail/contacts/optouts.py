"""E-mail and SMS opt-outs: recorded per contact with when and from which source; an import never
clears one. The two are apart: an e-mail unsubscribe does not stop SMS, nor the reverse."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, select, text

from segmail.addresses import email_key
from segmail.errors import NotFound
from segmail.store.db import session_scope
from segmail.store.models import Contact, OptOutSource


def _find_contacts(session, key: str) -> list[Contact]:  # noqa: ANN001
    key = key.strip()
    if "@" in key:
        return list(session.scalars(select(Contact).where(Contact.email_key == email_key(key))))
    if key.startswith("+"):  # a mobile number in international form: every contact sharing it
        from segmail.contacts.salespeople import international_mobile

        number = international_mobile(key, whose="the contact")
        return list(session.scalars(select(Contact).where(Contact.mobile_e164 == number)))
    return list(session.scalars(select(Contact).where(Contact.external_id == key)))


def set_opt_out(
    *, key: str, opted_out: bool, source: str = "cli", sms: bool = False, engine: Engine | None = None
) -> int:
    """Record (or lift) an e-mail opt-out (`sms`: an SMS opt-out) for every contact with that
    external ID, address or (+international) mobile number."""
    with session_scope(engine) as session:
        contacts = _find_contacts(session, key)
        if not contacts:
            raise NotFound(f"no contact with external ID, e-mail or mobile number {key!r}")
        now = datetime.now(UTC)
        if sms:
            for contact in contacts:
                _set_sms_opt_out(contact, opted_out=opted_out, source=source, now=now)
            return len(contacts)
        for contact in contacts:
            if opted_out and not contact.email_opt_out:
                contact.email_opt_out, contact.email_opt_out_at, contact.email_opt_out_source = (
                    True,
                    now,
                    source,
                )
            elif not opted_out and contact.email_opt_out:
                contact.email_opt_out, contact.email_opt_out_at, contact.email_opt_out_source = (
                    False,
                    None,
                    None,
                )
            contact.updated_at = now
        return len(contacts)


def _set_sms_opt_out(contact: Contact, *, opted_out: bool, source: str, now: datetime) -> None:
    if opted_out and not contact.sms_opt_out:
        contact.sms_opt_out, contact.sms_opt_out_at, contact.sms_opt_out_source = True, now, source
    elif not opted_out and contact.sms_opt_out:
        contact.sms_opt_out, contact.sms_opt_out_at, contact.sms_opt_out_source = False, None, None
        contact.sms_opt_out_run_id = None
    contact.updated_at = now


def opt_out_address(
    conn: Connection, *, address: str, source: OptOutSource, mailing_run_id: int | None, at: datetime
) -> int:
    """Opt out every contact with this address (an opt-out belongs to the address); returns how many
    changed. Contacts already opted out keep their first time and source."""
    return conn.execute(
        text(
            "UPDATE segmail_contacts SET email_opt_out = :yes, email_opt_out_at = :at,"
            " email_opt_out_source = :source, email_opt_out_run_id = :run, updated_at = :at"
            " WHERE email_key = :key AND email_opt_out = :no"
        ),
        {
            "yes": True,
            "no": False,
            "at": at,
            "source": source.value,
            "run": mailing_run_id,
            "key": email_key(address),
        },
    ).rowcount
