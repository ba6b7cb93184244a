"""Which delivery a report is about.

A report that carries a token (the VERP address `bounces+TOKEN@...` it was sent to, the
`unsubscribe+TOKEN@...` of a `mailto:` unsubscribe, or either inside a complaint's copy of the
mail) is matched by that token alone: the token is signed, so it names the delivery for certain,
and a forged, altered or expired one matches nothing (there is no second guess by Message-ID).
Only a report without any token falls back to the segmail Message-ID it quotes
(`<segmail.RUN.CONTACT@domain>`, deterministic per run and contact). Message-IDs are not secret,
so that match also requires the address the report names (if it names one) to be the one mailed.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, text

from segmail.feedback.reports import Report, ReportKind, parse_segmail_message_id
from segmail.feedback.tokens import InvalidToken, TokenPurpose, TokenSigner

# The token purposes that may name a delivery, per kind of report.
PURPOSES = {
    ReportKind.BOUNCE: {TokenPurpose.BOUNCE},
    ReportKind.COMPLAINT: {TokenPurpose.BOUNCE, TokenPurpose.UNSUBSCRIBE},
    ReportKind.UNSUBSCRIBE: {TokenPurpose.UNSUBSCRIBE},
}
FORGED = "its token does not verify (forged, altered, expired or of an unknown delivery)"
TEST_MAIL = "about a test mail: changes nothing"
NO_DELIVERY = "names no delivery of segmail (no token, no known Message-ID for the address)"

_SELECT = (
    "SELECT d.id, d.mailing_run_id, d.contact_id, d.email, r.mailing, d.status, d.message_id, d.bounce"
    " FROM segmail_deliveries d JOIN segmail_mailing_runs r ON r.id = d.mailing_run_id"
)
_BY_ID = text(_SELECT + " WHERE d.id = :id")
_BY_RUN_CONTACT = text(_SELECT + " WHERE d.mailing_run_id = :run AND d.contact_id = :contact")


@dataclass(frozen=True)
class Target:
    """The delivery a report is about."""

    delivery_id: int
    mailing_run_id: int
    contact_id: int
    email: str | None
    mailing: str
    status: str
    message_id: str | None
    bounce: str | None


@dataclass(frozen=True)
class Match:
    target: Target | None
    how: str  # "token", "message-id", or why nothing matched


def match_report(conn: Connection, report: Report, signer: TokenSigner | None) -> Match:
    if report.kind not in PURPOSES:
        return Match(None, "nothing to match")
    if report.tokens:
        return _by_token(conn, report, signer)
    return _by_message_id(conn, report)


def _by_token(conn: Connection, report: Report, signer: TokenSigner | None) -> Match:
    if signer is None:
        return Match(None, "no signing key is configured to verify its token")
    for token in report.tokens:
        try:
            verified = signer.verify(token)
        except InvalidToken:
            continue
        if verified.purpose == TokenPurpose.TEST:
            return Match(None, TEST_MAIL)
        if verified.purpose in PURPOSES[report.kind]:
            row = conn.execute(_BY_ID, {"id": verified.delivery_id}).first()
            if row is not None:
                return Match(Target(*row), "token")
    return Match(None, FORGED)


def _by_message_id(conn: Connection, report: Report) -> Match:
    for message_id in report.message_ids:
        run_contact = parse_segmail_message_id(message_id)
        if run_contact is None:
            continue
        row = conn.execute(_BY_RUN_CONTACT, {"run": run_contact[0], "contact": run_contact[1]}).first()
        if row is None:
            continue
        target = Target(*row)
        same_mail = (target.message_id or "").lower() == message_id
        if same_mail and _names_address(report, target):
            return Match(target, "message-id")
    return Match(None, NO_DELIVERY)


def _names_address(report: Report, target: Target) -> bool:
    return not report.addresses or (target.email or "").lower() in report.addresses
