"""The audience of an SMS run: contacts of the segments with a mobile number and no SMS opt-out,
one message per number.

Frozen like an e-mail run's (segmail.mailings.audience): one delivery row per contact, holding the
number (E.164) it goes to. The SMS opt-out is separate from the e-mail one: an e-mail unsubscribe
does not stop SMS, nor the reverse. Like an address's opt-out, it belongs to the number: a contact
whose number another contact opted out (a STOP from that phone) is skipped too. A contact that gets
no message has a `skipped` row with the reason (opted out, no mobile, a number already messaged).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, Row

from segmail.mailings.audience import Selection, load_candidates
from segmail.mailings.definition import Mailing

SMS_DELIVERY_COLUMNS = (
    "mailing_run_id",
    "contact_id",
    "segment_id",
    "mobile_e164",
    "language",
    "status",
    "reason",
    "attempts",
    "updated_at",
)
_SMS_CANDIDATES = (
    "SELECT c.id, c.mobile_e164, c.sms_opt_out, c.language, m.segment_id,"
    " CASE WHEN o.number IS NULL THEN 0 ELSE 1 END AS number_opted_out"
    " FROM segmail_contacts c"
    " JOIN (SELECT contact_id, MIN(segment_id) AS segment_id FROM segmail_memberships"
    "       WHERE segment_id IN :include GROUP BY contact_id) m ON m.contact_id = c.id"
    " LEFT JOIN (SELECT DISTINCT mobile_e164 AS number FROM segmail_contacts WHERE sms_opt_out) o"
    "  ON o.number = c.mobile_e164"
)
OPTED_OUT = "opted out of SMS"
NUMBER_OPTED_OUT = "opted out of SMS: another contact with this number opted out"
NO_MOBILE = "no mobile number"
DUPLICATE_NUMBER = "duplicate number: another contact of this run gets the message at this number"


def sms_skip_reason(
    *, mobile: str | None, opted_out: bool, number_opted_out: bool, messaged: set[str]
) -> str | None:
    """Why a contact of the audience gets no SMS, or None if it gets one."""
    if opted_out:
        return OPTED_OUT
    if number_opted_out:
        return NUMBER_OPTED_OUT
    if not mobile:
        return NO_MOBILE
    if mobile in messaged:
        return DUPLICATE_NUMBER
    return None


@dataclass
class SmsSelection(Selection):
    """The e-mail selection's language filter and cap, with the SMS skip rules: one message per number."""

    def unpack(self, contact: Row) -> tuple[int, int, str | None, str | None, str | None, str | None]:
        contact_id, mobile, opted_out, language, segment_id, number_opted_out = contact
        reason = sms_skip_reason(
            mobile=mobile,
            opted_out=bool(opted_out),
            number_opted_out=bool(number_opted_out),
            messaged=self.addressed,
        )
        return contact_id, segment_id, mobile, mobile, language, reason


def select_sms_deliveries(
    contacts: Sequence[Row],
    mailing: Mailing,
    *,
    languages: list[str] | None,
    max_recipients: int | None,
) -> tuple[list[tuple], dict]:
    """(contact_id, segment_id, mobile, language, status, reason) per contact, and the run's options."""
    selection = SmsSelection.of(mailing, languages=languages, max_recipients=max_recipients)
    deliveries, options = selection.select(contacts, languages=languages)
    return deliveries, {"channel": "sms", **options}


def select_sms_run(
    conn: Connection, mailing: Mailing, *, languages: list[str] | None, max_recipients: int | None
) -> tuple[tuple[str, ...], list[tuple], dict]:
    """What `freeze_audience` inserts for an SMS run: columns, rows and options."""
    deliveries, options = select_sms_deliveries(
        load_candidates(conn, mailing, select=_SMS_CANDIDATES),
        mailing,
        languages=languages,
        max_recipients=max_recipients,
    )
    return SMS_DELIVERY_COLUMNS, deliveries, options
