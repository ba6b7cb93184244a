"""`segmail mailings validate`: every variant rendered against a sample contact with strict
undefined variables, every attachment found, before any real run."""

from __future__ import annotations

from segmail.errors import SegmailError
from segmail.mailings.definition import Mailing
from segmail.mailings.render import SAMPLE_CONTACT, compile_variant, message_context

SAMPLE_SALESPERSON = {"code": "SAMPLE", "name": "Sam Sales", "email": "sam.sales@example.com"}


def validate_mailing(mailing: Mailing) -> list[str]:
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
