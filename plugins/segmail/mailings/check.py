"""`segmail mailings validate`: every variant rendered against a sample contact with strict
undefined variables, every attachment found, before any real run. An SMS variant is also measured
(encoding, characters, parts) and fails above the mailing's `max_parts`."""

from __future__ import annotations

from segmail.errors import SegmailError
from segmail.mailings.definition import Mailing
from segmail.mailings.render import SAMPLE_CONTACT, compile_variant, message_context
from segmail.store.models import Channel

SAMPLE_SALESPERSON = {"code": "SAMPLE", "name": "Sam Sales", "email": "sam.sales@example.com"}


def validate_mailing(mailing: Mailing, *, info: list[str] | None = None) -> list[str]:
    """The problems of a mailing; `info` receives what is worth saying besides (an SMS's length)."""
    if mailing.channel == Channel.SMS:
        return validate_sms_mailing(mailing, info=info if info is not None else [])
    problems = _sending_setup_problems(mailing)
    for language in mailing.variants:
        try:
            variant = compile_variant(mailing, language)
            variant.render(
                message_context(
                    contact=SAMPLE_CONTACT,
                    segment=mailing.audience.segments[0],
                    salesperson=SAMPLE_SALESPERSON,
                    mailing=mailing,
                )
            )
        except SegmailError as exc:
            problems.append(f"{mailing.slug}.yaml variant {language}: {exc}")
        except Exception as exc:  # e.g. jinja2.UndefinedError: name the variant and the cause
            problems.append(f"{mailing.slug}.yaml variant {language}: {type(exc).__name__}: {exc}")
    return problems


def _sending_setup_problems(mailing: Mailing) -> list[str]:
    """What every mail of this mailing needs besides its templates: unsubscribe links, the DKIM key."""
    from segmail.feedback.links import unsubscribe_links
    from segmail.mailings.dkim import dkim_key_from_connection

    problems = []
    try:
        unsubscribe_links()
    except SegmailError as exc:
        problems.append(f"{mailing.slug}.yaml: {exc}")
    if mailing.dkim is not None:
        try:
            dkim_key_from_connection(
                domain=mailing.dkim.domain,
                selector=mailing.dkim.selector,
                key_conn_id=mailing.dkim.key_conn_id,
            )
        except SegmailError as exc:
            problems.append(f"{mailing.slug}.yaml dkim: {exc}")
    return problems


def validate_sms_mailing(mailing: Mailing, *, info: list[str]) -> list[str]:
    """Every SMS variant rendered for the sample contact and measured; the sender resolved."""
    from segmail.sms.render import compile_sms, sms_context

    problems = _report_url_problems(mailing, info)
    for language in mailing.variants:
        where = f"{mailing.slug}.yaml variant {language}"
        try:
            compiled = compile_sms(mailing, language)
            text = compiled.render(
                sms_context(
                    contact=SAMPLE_CONTACT,
                    segment=mailing.audience.segments[0],
                    salesperson=SAMPLE_SALESPERSON,
                    mailing=mailing,
                )
            )
        except SegmailError as exc:
            problems.append(f"{where}: {exc}")
            continue
        except Exception as exc:  # e.g. jinja2.UndefinedError: name the variant and the cause
            problems.append(f"{where}: {type(exc).__name__}: {exc}")
            continue
        length, too_long = compiled.too_long(text)
        info.append(f"{mailing.slug} {language}: {length.describe()} (sender {compiled.sender})")
        if not text:
            problems.append(f"{where}: the message is empty for the sample contact")
        if too_long:
            problems.append(f"{where}: {too_long}")
    return problems


def _report_url_problems(mailing: Mailing, info: list[str]) -> list[str]:
    """Delivery reports need SEGMAIL_PUBLIC_URL (without it messages go, and stay `sent`) and, with
    it, the signing key their URLs are signed with."""
    from segmail import settings
    from segmail.sms.reports import ReportUrls

    if not settings.current().public_url:
        info.append(f"{mailing.slug}: no SEGMAIL_PUBLIC_URL: no delivery reports, messages stay `sent`")
        return []
    try:
        ReportUrls()
    except SegmailError as exc:
        return [f"{mailing.slug}.yaml: delivery report URLs: {exc}"]
    return []
