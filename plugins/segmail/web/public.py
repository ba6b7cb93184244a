"""The public app: the only part of segmail that recipients reach (unsubscribe links, RFC 8058).

It runs apart from Airflow's api-server (`segmail serve-public`), imports nothing of Airflow and
exposes nothing but `/u/TOKEN`, the SMS gateway's `/sms/dlr/TOKEN` and `/sms/in/SECRET`
(segmail.web.public_sms) and a health check: no API docs, no listing, no stack traces.

- `GET /u/TOKEN` never changes anything (link scanners prefetch links): it shows a page in the
  recipient's language with one button that posts.
- `POST /u/TOKEN` with `List-Unsubscribe=One-Click` (a mail client's one-click, or that button)
  opts the address out at once: no login, cookie or CSRF token, as RFC 8058 requires.
- A malformed, altered or expired token answers 400 and reveals nothing about any contact.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import Engine

from segmail.feedback.tokens import InvalidToken, TokenPurpose, TokenSigner
from segmail.feedback.unsubscribe import Recipient, recipient, unsubscribe
from segmail.language import choose_language
from segmail.store.models import OptOutSource
from segmail.web.public_sms import SmsCallbacks
from segmail.web.public_texts import DEFAULT_LANGUAGE, TEXTS, PageTexts

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 8192
_PAGES = Environment(
    loader=FileSystemLoader(str(Path(__file__).with_name("templates") / "public")),
    autoescape=select_autoescape(["html"]),
)
_MULTIPART_ONE_CLICK = re.compile(rb'name="List-Unsubscribe"\r?\n\r?\n\s*One-Click', re.IGNORECASE)
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
    "Referrer-Policy": "no-referrer",  # the token is in the URL: never pass it on
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True)
class PublicContext:
    engine: Engine
    signer: TokenSigner


def default_context() -> PublicContext:
    """The database and signing keys from settings, without Airflow (env or the given URL only)."""
    from segmail import settings
    from segmail.store.db import make_engine

    config = settings.current()
    return PublicContext(
        engine=make_engine(settings.database_url(use_airflow=False)),
        signer=TokenSigner(settings.signing_keys(use_airflow=False), max_age_days=config.token_max_age_days),
    )


def _mailing_name_and_languages(slug: str) -> tuple[str, list[str], str]:
    from segmail.errors import SegmailError
    from segmail.mailings.definition import get_mailing

    try:
        mailing = get_mailing(slug)
    except SegmailError:  # the definition was removed since the mail went out: plain texts
        return slug, list(TEXTS), DEFAULT_LANGUAGE
    return mailing.name, list(mailing.variants), mailing.default_language


def _texts_for(found: Recipient | None) -> tuple[str, PageTexts, str]:
    """(language, texts, mailing name): the mailing's language for this contact, then our nearest."""
    if found is None:
        return DEFAULT_LANGUAGE, TEXTS[DEFAULT_LANGUAGE], ""
    name, languages, default = _mailing_name_and_languages(found.mailing)
    variant = choose_language(found.contact_language, languages, default)
    lang = choose_language(variant, TEXTS, DEFAULT_LANGUAGE)
    return lang, TEXTS[lang], name


def _page(
    lang: str, texts: PageTexts, message: str, *, status: int = 200, button: bool = False, note: str = ""
):
    html = _PAGES.get_template("page.html").render(
        lang=lang, texts=texts, message=message, show_button=button, note=note
    )
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


def _invalid(exc: InvalidToken) -> HTMLResponse:
    texts = TEXTS[DEFAULT_LANGUAGE]
    key = "expired" if "expired" in str(exc) else "invalid"
    return _page(DEFAULT_LANGUAGE, texts, texts[key], status=400)


def _wants_one_click(body: bytes, content_type: str) -> bool:
    if content_type.startswith("multipart/form-data"):
        return bool(_MULTIPART_ONE_CLICK.search(body))
    fields = parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return ("List-Unsubscribe", "One-Click") in fields


def _source(body: bytes) -> OptOutSource:
    fields = dict(parse_qsl(body.decode("utf-8", errors="replace")))
    return OptOutSource.UNSUBSCRIBE_PAGE if fields.get("via") == "page" else OptOutSource.ONE_CLICK


async def _bounded_body(request: Request) -> bytes | None:
    """The request body, or None when it is larger than any unsubscribe request can be."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            return None
    return body


class UnsubscribePages:
    """The two answers to a token, apart from HTTP plumbing so they read (and test) on their own."""

    def __init__(self, context: Callable[[], PublicContext]) -> None:
        self._context = cache(context)  # settings are read on the first request, not at import

    def _verify(self, token: str) -> Recipient | None:
        """The delivery behind an unsubscribe token; None for a test mail's token."""
        context = self._context()
        verified = context.signer.verify(token)
        if verified.purpose is TokenPurpose.TEST:
            return None
        found = recipient(verified.delivery_id, engine=context.engine)
        if verified.purpose is not TokenPurpose.UNSUBSCRIBE or found is None:
            raise InvalidToken("this link is not valid")
        return found

    def show(self, token: str) -> Response:
        try:
            found = self._verify(token)
        except InvalidToken as exc:
            return _invalid(exc)
        lang, texts, name = _texts_for(found)
        if found is None:  # a test mail's link: the page as recipients see it, changing nothing
            question = texts["question"].format(mailing="…", address="…")
            return _page(lang, texts, question, button=True, note=texts["test"])
        address = found.email or ""
        if found.unsubscribed_at is not None:
            return _page(lang, texts, texts["already"].format(address=address))
        return _page(lang, texts, texts["question"].format(mailing=name, address=address), button=True)

    def one_click(self, token: str, body: bytes, content_type: str) -> Response:
        try:
            found = self._verify(token)
        except InvalidToken as exc:
            return _invalid(exc)
        lang, texts, _ = _texts_for(found)
        if not _wants_one_click(body, content_type):
            return _page(lang, texts, texts["invalid"], status=400)
        if found is None:
            return _page(lang, texts, texts["test"])
        changed = unsubscribe(found.delivery_id, source=_source(body), engine=self._context().engine)
        key = "done" if changed else "already"
        return _page(lang, texts, texts[key].format(address=found.email or ""))


def create_public_app(context: Callable[[], PublicContext] = default_context) -> FastAPI:
    app = FastAPI(title="segmail public", docs_url=None, redoc_url=None, openapi_url=None)
    shared = cache(context)  # one database engine and signer for every route
    pages = UnsubscribePages(shared)
    sms = SmsCallbacks(shared)

    @app.get("/healthz", response_class=PlainTextResponse)
    def healthz() -> str:
        return "ok"

    @app.get("/u/{token}")
    def show(token: str) -> Response:
        return pages.show(token)

    @app.post("/u/{token}")
    async def one_click(token: str, request: Request) -> Response:
        body = await _bounded_body(request)
        if body is None:
            return PlainTextResponse("request too large", status_code=413)
        return pages.one_click(token, body, request.headers.get("content-type", ""))

    @app.api_route("/sms/dlr/{token}", methods=["GET", "POST"])
    def sms_report(token: str, request: Request) -> Response:
        return sms.report(token, request.query_params)

    @app.api_route("/sms/in/{secret}", methods=["GET", "POST"])
    def sms_inbound(secret: str, request: Request) -> Response:
        return sms.inbound(secret, request.query_params)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("public app: %s %s failed", request.method, request.url.path)
        texts = TEXTS[DEFAULT_LANGUAGE]
        return _page(DEFAULT_LANGUAGE, texts, texts["error"], status=500)

    return app
