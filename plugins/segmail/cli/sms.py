"""`segmail sms-urls`: what to put into the SMS gateway's configuration for reports and STOP replies."""

from __future__ import annotations

import argparse


def cmd_sms_urls(args: argparse.Namespace) -> int:
    """The inbound URL holds a secret derived from the signing key: printed only on request, here."""
    from segmail import settings
    from segmail.errors import SegmailError
    from segmail.sms.kannel import DLR_QUERY
    from segmail.sms.reports import REPORT_PATH, inbound_url

    config = settings.current()
    callback_url = config.sms_callback_url or config.public_url
    if not callback_url:
        raise SegmailError(
            "neither SEGMAIL_SMS_CALLBACK_URL nor SEGMAIL_PUBLIC_URL is set: "
            "the gateway has nowhere to send reports and replies"
        )
    inbound = inbound_url()
    if inbound is None:
        raise SegmailError("no signing key: set the Airflow connection segmail_signing (password)")
    print(
        f"delivery reports: segmail sets each message's dlr-url: {callback_url}{REPORT_PATH}<token>?{DLR_QUERY}"
    )
    print("Kannel sms-service for inbound messages (STOP), in kannel.conf:")
    print("  group = sms-service\n  keyword = default\n  catch-all = true\n  max-messages = 0")
    print(f'  get-url = "{inbound}?from=%p&to=%P&text=%a"')
    print("and mo-recode = true in the smsbox group (UCS-2 replies arrive as UTF-8).")
    return 0


def add_sms_urls(sub: argparse._SubParsersAction) -> None:
    urls = sub.add_parser("sms-urls", help="the SMS gateway settings for delivery reports and STOP replies")
    urls.set_defaults(func=cmd_sms_urls)
