"""The preview page of a mailing: `<base>/mailings/<slug>/preview?contact=&language=&run=`.

Every language's mail as the composer of sending builds it (mailings/preview.py), for the sample
contact, a chosen contact (external ID or e-mail) or one mail of a run. The HTML part is shown only
inside `<iframe sandbox srcdoc>`: no scripts, no forms, no same-origin access, no navigation of
this page, so a template's HTML can do nothing here. A chosen contact and a run's mails are contact
data (web/access.py): a viewer gets the sample contact, and a note saying why.

Every query value answers with a page: unknown slug or run a 404 text, an unknown contact or
language a note, a template error its file and line.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse

from segmail.errors import NotFound, SegmailError
from segmail.mailings.definition import SLUG, Mailing, get_mailing
from segmail.mailings.preview import MailPreview, pending_mail, preview_mail, sample_mail
from segmail.store import read
from segmail.store.models import Channel
from segmail.web.access import CONTACTS_DENIED
from segmail.web.render import as_utc

NO_NUL = r"^[^\x00]*$"
ContactKey = Annotated[str, Query(max_length=320, pattern=NO_NUL)]
Language = Annotated[str, Query(max_length=100, pattern=NO_NUL)]
RunParam = Annotated[str, Query(max_length=100, pattern=NO_NUL)]
RUN_CONTACTS_HIDDEN = (
    "The mails of a run name contacts, which you may not see, so the sample contact is shown instead "
    "(with the run's mailing definition as it is now)."
)

router = APIRouter()


@router.get("/mailings/{slug}/preview", response_class=HTMLResponse)
def preview_page(
    request: Request, slug: str, contact: ContactKey = "", language: Language = "", run: RunParam = ""
) -> HTMLResponse:
    from segmail.web.monitoring import _page

    mailing, definition_error = _mailing(slug)
    if mailing is None:
        return _page(request, "preview.html", name=slug, slug=slug, definition_error=definition_error)
    contact, language = contact.strip(), language.strip()
    may_see = bool(getattr(request.state, "segmail_contacts", False))
    if contact and not may_see:
        raise HTTPException(403, CONTACTS_DENIED)
    found_run = _run(run, mailing) if run.strip() else None
    notes: list[str] = []
    shown = _shown(mailing, found_run, may_see=may_see, contact=contact, language=language, notes=notes)
    return _page(
        request,
        "preview.html",
        tab="runs",
        name=mailing.name,
        slug=mailing.slug,
        run=found_run,
        contact=contact,
        language_asked=language,
        sms=_is_sms(mailing),
        notes=notes,
        links=_language_links(mailing, shown, run=found_run, contact=contact),
        **shown,
    )


def _shown(
    mailing: Mailing, run: dict | None, *, may_see: bool, contact: str, language: str, notes: list[str]
) -> dict:
    """A run's mail for those who may see contacts; for others the sample contact, since a run's
    mails name contacts; outside a run the chosen contact, else the sample."""
    if run is not None and may_see:
        return _run_preview(mailing, run, contact=contact, language=language, notes=notes)
    if run is not None:
        notes.append(RUN_CONTACTS_HIDDEN)
    return _contact_preview(mailing, contact=contact, language=language, notes=notes)


def _engine():
    from segmail.web.monitoring import _engine

    return _engine()


def _mailing(slug: str) -> tuple[Mailing | None, str | None]:
    """The definition, or (None, its error) when its file is broken; 404 when there is none."""
    if not SLUG.match(slug):
        raise HTTPException(
            404, "There is no such mailing: a mailing's name is its file name under include/mailings/."
        )
    try:
        return get_mailing(slug), None
    except NotFound:
        raise HTTPException(404, f"There is no mailing {slug} (include/mailings/{slug}.yaml).") from None
    except SegmailError as exc:
        return None, str(exc)


def _run(value: str, mailing: Mailing) -> dict:
    """The run named by `run=`: a 404 text when it is no number, no run, or a run of another mailing."""
    value = value.strip()
    found = read.mailing_run(_engine(), int(value)) if value.isascii() and value.isdigit() else None
    if found is None:
        raise HTTPException(404, f"There is no mailing run #{value[:40]}.")
    if found["mailing"] != mailing.slug:
        raise HTTPException(
            404, f"Mailing run #{found['id']} is a run of {found['mailing']}, not of {mailing.slug}."
        )
    return found


def _choose_language(mailing: Mailing, asked: str, fallback: str | None, notes: list[str]) -> str:
    """The variant asked for (exact, then base language, then the default, as sending chooses)."""
    if not asked:
        return mailing.variant_for(fallback) if fallback else mailing.default_language
    chosen = mailing.variant_for(asked)
    if chosen.casefold() != asked.casefold():
        notes.append(
            f"This mailing has no variant “{asked[:100]}”: showing {chosen}, as sending would choose."
        )
    return chosen


def _contact_preview(mailing: Mailing, *, contact: str, language: str, notes: list[str]) -> dict:
    """The mail to a chosen contact (else the sample contact) outside any run."""
    engine = _engine()
    row = read.preview_contact(engine, contact, segments=mailing.audience.segments) if contact else None
    if contact and row is None:
        notes.append(f"No contact has the external ID or e-mail “{contact}”: showing the sample contact.")
    if row is None:
        first = mailing.audience.segments[0]
        mail = sample_mail(mailing, salesperson=read.segment_salesperson(engine, first))
        chosen = _choose_language(mailing, language, None, notes)
    else:
        notes.extend(_contact_notes(mailing, row))
        row["segment"] = row["segment"] or mailing.audience.segments[0]
        mail = pending_mail(row)
        chosen = _choose_language(mailing, language, row["language"], notes)
    return {"mail": mail, "sample": row is None, "preview": preview_mail(mailing, chosen, mail=mail)}


def _contact_notes(mailing: Mailing, row: dict) -> list[str]:
    """Why a run would not mail this contact, though the preview shows what it would get."""
    notes = []
    if row["segment"] is None:
        notes.append(
            f"Not in the audience ({', '.join(mailing.audience.segments)}): a run would not include this contact."
        )
    if _is_sms(mailing):
        if not row["mobile_e164"]:
            notes.append("This contact has no mobile number: an SMS run would skip it.")
        if row["sms_opt_out"]:
            notes.append("This contact's number opted out of SMS: a run would skip it.")
        return notes
    if not row["email"]:
        notes.append("This contact has no e-mail address: a run would skip it.")
    if row["email_opt_out"]:
        notes.append("This contact opted out of e-mail: a run would skip it.")
    if row["suppressed"]:
        notes.append(f"This address is suppressed ({row['suppressed']}): a run would skip it.")
    return notes


def _is_sms(mailing: Mailing) -> bool:
    return mailing.channel == Channel.SMS


def _run_preview(mailing: Mailing, run: dict, *, contact: str, language: str, notes: list[str]) -> dict:
    """One mail of a frozen run, with the run's Message-ID, unsubscribe token and return path."""
    languages = read.run_languages(_engine(), run["id"])
    row = _run_mail(run["id"], languages, contact=contact, language=language, notes=notes)
    if row is None:
        notes.append(f"Run #{run['id']} has no mails: showing the sample contact.")
        return _contact_preview(mailing, contact="", language=language, notes=notes)
    frozen = row["variant"] or mailing.default_language
    variant = frozen if frozen in mailing.variants else mailing.variant_for(frozen)
    if variant != frozen:
        notes.append(f"The mailing has no “{frozen}” variant any more: showing {variant}.")
    date = as_utc(row["sent_at"]) or datetime.now(UTC)
    mail = pending_mail(row)
    shown = preview_mail(mailing, variant, mail=mail, run_id=run["id"], date=date)
    return {"mail": mail, "sample": False, "preview": shown, "delivery": row, "run_languages": languages}


def _run_mail(
    run_id: int, languages: list[str], *, contact: str, language: str, notes: list[str]
) -> dict | None:
    """The contact's mail of the run, else its first mail in `language`, else its first at all."""
    wanted = next((code for code in languages if code.casefold() == language.casefold()), None)
    if language and wanted is None and not contact:
        notes.append(f"Run #{run_id} has no mails in “{language[:100]}”.")
    row = read.run_delivery(_engine(), run_id, key=contact or None, language=None if contact else wanted)
    if row is None and contact:
        notes.append(f"No mail of run #{run_id} is to a contact with external ID or e-mail “{contact}”.")
    elif contact and language and (row["variant"] or "").casefold() != language.casefold():
        notes.append(f"This contact's mail in run #{run_id} is in {row['variant']}, as the run chose it.")
    return row if row is not None else read.run_delivery(_engine(), run_id)


def _language_links(
    mailing: Mailing, shown: dict, *, run: dict | None, contact: str
) -> list[tuple[str, str, bool]]:
    """(language, query string, current) for every variant; a run's links pick a mail per language."""
    preview: MailPreview = shown["preview"]
    in_run = "delivery" in shown
    codes = shown.get("run_languages") if in_run else list(mailing.variants)
    links = []
    for code in codes or []:
        params = {"language": code}
        if run is not None:
            params["run"] = run["id"]
        if contact and not in_run:
            params["contact"] = contact
        links.append((code, urlencode(params), code == preview.language))
    return links
