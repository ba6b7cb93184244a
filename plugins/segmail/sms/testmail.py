"""The test message of an SMS mailing: each variant, `[TEST] ` first, to the responsible
salesperson's mobile (or a given number), through the mailing's gateway.

Rendered exactly like the real run's messages, logged in segmail_test_mails only (the number as
recipient, the text as subject): no delivery or activity row is ever written for a contact, and
no report URL goes with it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine

from segmail.contacts.salespeople import international_mobile
from segmail.errors import SegmailError
from segmail.mailings.definition import Mailing
from segmail.mailings.testmail import (
    accepted_or_raise,
    each_language,
    log_test_mail,
    rendered_contact,
    responsible_salesperson,
    template_salesperson,
)
from segmail.sms.encoding import measure
from segmail.sms.gateway import SmsGateway, SmsMessage, SubmitResult
from segmail.sms.render import compile_sms, sms_context
from segmail.store.db import default_engine
from segmail.store.models import TestMailStatus

TEST_PREFIX = "[TEST] "


def _number(mailing: Mailing, salesperson: dict | None, recipient: str | None) -> str:
    if recipient:
        return international_mobile(recipient, whose="the test recipient")
    if not salesperson["mobile"]:
        code = salesperson["code"]
        raise SegmailError(
            f"salesperson {code} ({salesperson['name']}) has no mobile number for the test SMS of"
            f" {mailing.slug}: add one with `segmail salespeople add {code} --mobile +43...`, or give a recipient"
        )
    return salesperson["mobile"]


def send_test_sms(
    mailing: Mailing,
    *,
    gateway: SmsGateway,
    language: str = "all",
    contact_key: str | None = None,
    recipient: str | None = None,
    dag_run_id: str | None = None,
    engine: Engine | None = None,
) -> list[dict]:
    """One test SMS per language (or the one given); raises SegmailError if any was not accepted."""
    engine = engine or default_engine()
    salesperson = None if recipient else responsible_salesperson(mailing, engine=engine, require_email=False)
    number = _number(mailing, salesperson, recipient)
    contact, contact_language = rendered_contact(contact_key, engine=engine)
    context = sms_context(
        contact=contact,
        segment=mailing.audience.segments[0],
        salesperson=template_salesperson(salesperson) if salesperson else None,
        mailing=mailing,
    )

    def send_one(lang: str) -> dict:
        return _send_one(
            mailing, lang, number, context, gateway=gateway, dag_run_id=dag_run_id, engine=engine
        )

    with gateway:
        sent = each_language(mailing, language, send_one, rendered_for=contact_language)
    return accepted_or_raise(sent, what="test SMS")


def _send_one(
    mailing: Mailing,
    lang: str,
    number: str,
    context: dict,
    *,
    gateway: SmsGateway,
    dag_run_id: str | None,
    engine: Engine,
) -> dict:
    """Render, submit and log one language's test message."""
    compiled = compile_sms(mailing, lang)
    text = TEST_PREFIX + compiled.render(context)
    length = measure(text)
    message = SmsMessage(to=number, sender=compiled.sender, text=text, encoding=length.encoding)
    try:
        answer = gateway.submit(message)
        accepted = answer.result == SubmitResult.ACCEPTED
        error = None if accepted else f"{answer.result}: {answer.code or ''} {answer.reply}".strip()
    except OSError as exc:
        accepted, error = False, f"{type(exc).__name__}: {exc}"
    status = TestMailStatus.SENT if accepted else TestMailStatus.FAILED
    now = datetime.now(UTC)
    log_test_mail(
        engine,
        mailing=mailing.slug,
        language=lang,
        recipient=number,
        subject=text,
        status=status,
        error=error,
        dag_run_id=dag_run_id,
        sent_at=now,
    )
    return {
        "language": lang,
        "recipient": number,
        "text": text,
        "length": length.describe(),
        "status": status,
        "error": error,
    }
