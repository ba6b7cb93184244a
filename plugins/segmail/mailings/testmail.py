"""Test mails: one mail per language to the responsible salesperson, `[TEST]` in the subject.

They go through the same composer (rendering and MIME) and transport as the real run but are
logged in segmail_test_mails only: no delivery or activity row is ever written for a contact.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import Engine, select, text

from segmail.addresses import email_key, safe_address
from segmail.errors import NotFound, SegmailError
from segmail.mailings.compose import Recipient, RenderFailed, composer_for
from segmail.mailings.definition import Mailing
from segmail.mailings.render import SAMPLE_CONTACT, compile_variant
from segmail.mailings.transport import Transport, classify
from segmail.store.db import default_engine, session_scope
from segmail.store.models import Salesperson, Segment, SentTestMail, TestMailStatus

TEST_HEADERS = {"X-Segmail-Test": "yes"}


def responsible_salesperson(
    mailing: Mailing, *, engine: Engine | None = None, require_email: bool = True
) -> dict:
    """The mailing's salesperson code, else the one of its first audience segment; code -> address
    (and mobile, where an SMS mailing's test goes: segmail.sms.testmail)."""
    with session_scope(engine) as session:
        code = mailing.salesperson
        segment_name = mailing.audience.segments[0]
        if not code:
            segment = session.scalar(select(Segment).where(Segment.name_key == segment_name.casefold()))
            if segment is None:
                raise NotFound(f"segment {segment_name!r} of mailing {mailing.slug} does not exist")
            if segment.salesperson_id is None:
                raise SegmailError(
                    f"segment {segment_name!r} has no salesperson; assign one with "
                    "`segmail segments create --salesperson` or the segments_admin DAG, "
                    "or give a recipient"
                )
            person = session.get(Salesperson, segment.salesperson_id)
        else:
            person = session.scalar(select(Salesperson).where(Salesperson.code == code.upper()))
            if person is None:
                raise NotFound(f"salesperson {code!r} named by mailing {mailing.slug} does not exist")
        if require_email and not person.email:
            raise SegmailError(f"salesperson {person.code} ({person.name}) has no e-mail address")
        return {
            "code": person.code,
            "name": person.name,
            "email": person.email or "",
            "mobile": person.mobile_e164 or "",
        }


def template_salesperson(salesperson: dict) -> dict:
    """What templates see of the salesperson: what a real run's mails see, nothing more."""
    return {key: salesperson[key] for key in ("code", "name", "email")}


def contact_for(key: str, *, engine: Engine) -> tuple[dict, str | None]:
    """The contact with external ID or e-mail `key` as templates see it, and its language: a test
    rendered for a real contact (of either channel, segmail.sms.testmail) looks as that contact's will."""
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT c.first_name, c.last_name, c.email, c.organization, c.account_number, c.country_code,"
                " c.external_id, c.language, c.mobile_e164 FROM segmail_contacts c"
                " WHERE c.external_id = :k OR c.email_key = :lk ORDER BY c.id LIMIT 1"
            ),
            {"k": key, "lk": email_key(key)},
        ).first()
    if row is None:
        raise NotFound(f"no contact with external ID or e-mail {key!r}")
    contact = {k: (v or "") for k, v in row._asdict().items()}
    contact["mobile"] = contact.pop("mobile_e164")
    return contact, row.language


def rendered_contact(contact_key: str | None, *, engine: Engine) -> tuple[dict, str | None]:
    """What a test renders for: the contact `contact_key` names (`contact_for`), else the sample
    contact (no language)."""
    return contact_for(contact_key, engine=engine) if contact_key else (dict(SAMPLE_CONTACT), None)


def each_language(
    mailing: Mailing, language: str, send_one: Callable[[str], dict], *, rendered_for: str | None
) -> list[dict]:
    """`send_one` for every variant (`language` "all") or the one `language` picks; each answer
    says whose data it was rendered for."""
    languages = list(mailing.variants) if language == "all" else [mailing.variant_for(language)]
    return [{**send_one(lang), "rendered_for": rendered_for or "sample"} for lang in languages]


def accepted_or_raise(sent: list[dict], *, what: str) -> list[dict]:
    """The test messages, all accepted; SegmailError naming those that were not."""
    failures = [s for s in sent if s["status"] != TestMailStatus.SENT]
    if failures:
        raise SegmailError(f"{what} not accepted: {failures}")
    return sent


def log_test_mail(engine: Engine, **fields: object) -> None:
    """One row in segmail_test_mails: where a test message is logged instead of on contacts."""
    with session_scope(engine) as session:
        session.add(SentTestMail(**fields))


def send_test_mails(
    mailing: Mailing,
    *,
    transport: Transport,
    language: str = "all",
    contact_key: str | None = None,
    recipient: str | None = None,
    dag_run_id: str | None = None,
    engine: Engine | None = None,
) -> list[dict]:
    """One test mail per language (or the one given); raises SegmailError if any was not accepted."""
    engine = engine or default_engine()
    salesperson = responsible_salesperson(mailing, engine=engine) if not recipient else None
    to_addr = recipient or salesperson["email"]
    if safe_address(to_addr) is None:
        raise SegmailError(f"{to_addr!r} is not a usable e-mail address")
    contact, contact_language = rendered_contact(contact_key, engine=engine)
    to = Recipient(
        name=salesperson["name"] if salesperson else to_addr,
        address=to_addr,
        contact=contact,
        segment=mailing.audience.segments[0],
        salesperson=template_salesperson(salesperson)
        if salesperson
        else {"code": "", "name": "", "email": to_addr},
    )

    def send_one(lang: str) -> dict:
        return _send_one(mailing, lang, to, transport=transport, dag_run_id=dag_run_id, engine=engine)

    with transport:
        sent = each_language(mailing, language, send_one, rendered_for=contact_language)
    return accepted_or_raise(sent, what="test mail(s)")


def _send_one(
    mailing: Mailing,
    lang: str,
    to: Recipient,
    *,
    transport: Transport,
    dag_run_id: str | None,
    engine: Engine,
) -> dict:
    """Compose and send one language's test mail and log it in segmail_test_mails."""
    composer = composer_for(
        mailing, compile_variant(mailing, lang), subject_prefix="[TEST] ", extra_headers=TEST_HEADERS
    )
    now = datetime.now(UTC)
    message_id = composer.message_id(0, f"test.{int(now.timestamp() * 1000)}.{lang}")
    # Test links open the unsubscribe page but change nothing (a TEST-purpose token).
    composed = composer.compose(to, message_id=message_id, date=now, links=composer.links.for_test_mail())
    if isinstance(composed, RenderFailed):
        raise composed.error
    status, error = TestMailStatus.SENT, None
    try:
        transport.send(composed.envelope_from, to.address, composed.data)
    except Exception as exc:
        status, error = TestMailStatus.FAILED, classify(exc).summary.strip()
    log_test_mail(
        engine,
        mailing=mailing.slug,
        language=lang,
        recipient=to.address,
        subject=composed.subject,
        message_id=message_id,
        status=status,
        error=error,
        dag_run_id=dag_run_id,
        sent_at=now,
    )
    return {
        "language": lang,
        "recipient": to.address,
        "subject": composed.subject,
        "status": status,
        "error": error,
    }
