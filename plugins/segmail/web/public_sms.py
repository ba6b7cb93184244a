"""The SMS gateway's two calls into the public app: delivery reports and inbound messages.

- `GET /sms/dlr/TOKEN?status=%d&answer=%A` (Kannel's dlr-url; POST works too): the report on one
  message, its token signed per delivery. A forged token answers 400 and changes nothing.
- `GET /sms/in/SECRET?from=%p&text=%a` (Kannel's sms-service get-url): a message from a phone; a
  stop word opts the number out of SMS. SECRET is derived from the signing key
  (`segmail.sms.reports.inbound_url`); a wrong one answers 403 and changes nothing. The answer
  is an empty 200, so a gateway that replies with the body sends nothing to the phone; what was
  done is in the `X-Segmail-Outcome` header.

Answers are short plain text, never a page or a stack trace: the caller is a gateway. A database
that cannot be reached answers 503, which a gateway retries (Kannel: `http-request-retry`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from fastapi.responses import PlainTextResponse
from sqlalchemy.exc import DBAPIError

from segmail.sms.reports import ReportOutcome, apply_delivery_report, apply_inbound_sms, inbound_secret_ok

if TYPE_CHECKING:
    from segmail.web.public import PublicContext

log = logging.getLogger(__name__)
MAX_STATUS = 1 << 16
_PLAIN = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def _plain(body: str, status: int = 200, **headers: str) -> PlainTextResponse:
    return PlainTextResponse(body, status_code=status, headers={**_PLAIN, **headers})


def _clean(value: str | None, limit: int) -> str:
    """A query value as the database may take it (PostgreSQL refuses NUL characters)."""
    return (value or "").replace("\x00", "")[:limit]


def _report_type(value: str | None) -> int | None:
    value = (value or "").strip()
    if not value.isascii() or not value.isdigit() or len(value) > 6:
        return None
    number = int(value)
    return number if 0 < number < MAX_STATUS else None


def _unavailable(exc: DBAPIError) -> PlainTextResponse:
    log.warning("public app: an SMS callback could not reach the database: %s", exc)
    return _plain("temporarily unavailable: try again", 503)


class SmsCallbacks:
    def __init__(self, context: Callable[[], PublicContext]) -> None:
        self._context = context

    def report(self, token: str, query: Mapping[str, str]) -> PlainTextResponse:
        kind = _report_type(query.get("status"))
        if kind is None:
            return _plain("status must be the gateway's report type, a number such as 1", 400)
        context = self._context()
        try:
            result = apply_delivery_report(
                _clean(token, 100),
                kind,
                answer=_clean(query.get("answer"), 1000),
                signer=context.signer,
                engine=context.engine,
            )
        except DBAPIError as exc:
            return _unavailable(exc)
        if result.outcome is ReportOutcome.INVALID:
            return _plain("invalid delivery report token: nothing changed", 400)
        return _plain(f"{result.outcome.value}: {result.detail}")

    def inbound(self, secret: str, query: Mapping[str, str]) -> PlainTextResponse:
        context = self._context()
        if not inbound_secret_ok(_clean(secret, 100), context.signer.keys):
            return _plain("invalid inbound secret: nothing changed", 403)
        sender = _clean(query.get("from"), 40)
        if not sender:
            return _plain("the sender's number (from) is missing", 400)
        try:
            result = apply_inbound_sms(sender, _clean(query.get("text"), 2000), engine=context.engine)
        except DBAPIError as exc:
            return _unavailable(exc)
        return _plain("", 200, **{"X-Segmail-Outcome": result.outcome.value})
