"""FastAPI app for the monitoring pages, mounted in Airflow's api-server at /segmail.

Every route needs Airflow's login and the access of web/access.py: run totals for those who may
read DAG runs, contact data only for those who may also see contacts. Query values are bounded
before they reach SQL (pages, limits, ids up to INTEGER, no NUL byte, `%`/`_` matched literally), so
absurd values get a 4xx or an empty page on SQLite and PostgreSQL alike, never a 500. Pages answer
errors with an HTML page, the /api/ endpoints with JSON. No OpenAPI schema or docs are served.
"""

from __future__ import annotations

import json
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from sqlalchemy import Engine
from starlette.exceptions import HTTPException as StarletteHTTPException

from segmail.store import read
from segmail.web import render
from segmail.web.access import require_contacts_access, require_login, require_runs_access

__all__ = ["create_app", "require_login"]

MAILS_CSV_HEADER = [
    "id",
    "external_id",
    "first_name",
    "last_name",
    "email",
    "mobile_e164",  # the number of an SMS run's message
    "language",
    "status",
    "reason",
    "smtp_code",
    "smtp_response",
    "message_id",
    "sent_at",
    "unsubscribed_at",
]
SUPPRESSIONS_CSV_HEADER = ["address", "reason", "source", "mailing_run_id", "mailing", "created_at"]
MAILING_DAG_PREFIX = "mailing__"  # a mailing's DAG is `mailing__<slug>`
MAX_PAGE = 1_000_000  # 50 million rows deep; a larger page number is a mistake (422)
NO_NUL = r"^[^\x00]*$"  # PostgreSQL cannot store or compare a NUL character

Search = Annotated[str, Query(max_length=200, pattern=NO_NUL)]
Mailing = Annotated[str, Query(max_length=100, pattern=NO_NUL)]
Status = Annotated[str, Query(pattern=f"^({'|'.join(read.STATUSES)})?$")]
PageNo = Annotated[int, Query(ge=1, le=MAX_PAGE)]
ContactsUser = Depends(require_contacts_access)

router = APIRouter()


def create_app() -> FastAPI:
    app = FastAPI(
        title="segmail",
        dependencies=[Depends(require_runs_access)],
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.include_router(router)
    from segmail.web.preview import router as preview_router  # it uses this module's page helpers

    app.include_router(preview_router)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    return app


def _engine() -> Engine:
    from segmail.store.db import read_only_engine

    return read_only_engine()


def _base(request: Request) -> str:
    """Where this app is mounted (`/segmail` in the api-server), for links and redirects."""
    return request.scope.get("root_path", "").rstrip("/")


def _is_api(request: Request) -> bool:
    return request.url.path.startswith(f"{_base(request)}/api/")


def _page(request: Request, template: str, *, status_code: int = 200, **context) -> HTMLResponse:
    context.setdefault("contacts", getattr(request.state, "segmail_contacts", False))
    html = render.TEMPLATES.get_template(template).render(
        base=_base(request), status_code=status_code, **context
    )
    return HTMLResponse(html, status_code=status_code)


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    if _is_api(request):
        return await http_exception_handler(request, exc)
    response = _page(request, "error.html", status_code=exc.status_code, message=exc.detail)
    response.headers.update(exc.headers or {})
    return response


async def _invalid_request(request: Request, exc: RequestValidationError) -> Response:
    if _is_api(request):
        return await request_validation_exception_handler(request, exc)
    problems = "; ".join(f"{'.'.join(map(str, e['loc'][1:]))}: {e['msg']}" for e in exc.errors())
    return _page(request, "error.html", status_code=422, message=f"Invalid request — {problems}")


def _pages(total: int) -> int:
    return max(1, -(-total // read.PAGE_SIZE))


def _dag_run_url(request: Request, run: dict) -> str:
    """The run's DAG run in Airflow's UI (the api-server root, one level above this app's mount)."""
    airflow = _base(request).rpartition("/")[0]
    return f"{airflow}/dags/{MAILING_DAG_PREFIX}{run['mailing']}/runs/{quote(run['dag_run_id'], safe='')}"


def _mailing_names() -> dict[str, str]:
    """Display names of the mailings whose definitions load (a broken file just shows its slug)."""
    from segmail.mailings.definition import load_mailings

    try:
        mailings, _errors = load_mailings()
    except Exception:  # the pages must not depend on include/ being readable
        return {}
    return {slug: mailing.name for slug, mailing in mailings.items()}


def _sending(run: dict, totals: dict) -> dict:
    """The mailing's time zone, schedule, send window and caps now, and — while the run sends — how
    many mails wait for the window or a cap, until when (nothing when the mailing does not load)."""
    from segmail.mailings.definition import get_mailing
    from segmail.store.models import RunStatus
    from segmail.throttle.status import sending_state

    try:
        state = sending_state(get_mailing(run["mailing"]), engine=_engine())
    except Exception:  # the pages must not depend on include/ being readable
        return {"sending": [], "waiting": None}
    gated = run["status"] == RunStatus.SENDING and not run["dry_run"]  # a dry run passes no gate
    pending = totals.get("pending", 0) if gated else 0
    return {"sending": state.facts(), "waiting": state.wait(pending)}


def _existing_run(run_id: int) -> dict:
    run = read.mailing_run(_engine(), run_id)
    if run is None:
        raise HTTPException(404, f"There is no mailing run #{run_id}.")
    return run


# ---------------------------------------------------------------- mailing runs


@router.get("/", response_class=HTMLResponse)
def runs_page(request: Request, mailing: Mailing = "") -> HTMLResponse:
    runs = read.mailing_runs(mailing=mailing or None, limit=30, engine=_engine())
    names = _mailing_names()
    for run in runs:
        run.update(
            name=names.get(run["mailing"], run["mailing"]),
            nothing_sent=render.nothing_sent(run, run),
            dag_run_url=_dag_run_url(request, run),
            sent_total=render.sent_count(run),
        )
    peak = max([r["sent_total"] + r["failed"] + r["skipped"] for r in runs] + [1])
    return _page(
        request,
        "runs.html",
        runs=runs,
        peak=peak,
        mailing=mailing,
        tab="runs",
        rates=_feedback_chart(mailing),
        previews=names,  # slug -> name: every mailing's preview, also one without runs yet
    )


def _feedback_chart(mailing: str) -> dict:
    """Bounce and complaint rates of the last runs beside the limits that turn a run red."""
    from segmail import settings

    config = settings.current()
    rates = read.feedback_rates(mailing=mailing or None, limit=30, engine=_engine())
    bounce_limit, complaint_limit = config.max_bounce_rate, config.max_complaint_rate
    top = max([r["bounce_rate"] for r in rates] + [r["complaint_rate"] for r in rates] + [bounce_limit, 0.01])
    return {"runs": rates, "top": top, "bounce_limit": bounce_limit, "complaint_limit": complaint_limit}


@router.get("/api/runs")
def runs_data(mailing: Mailing = "", limit: Annotated[int, Query(ge=1, le=500)] = 30) -> list[dict]:
    runs = read.mailing_runs(mailing=mailing or None, limit=limit, engine=_engine())
    for run in runs:
        run["nothing_sent"] = render.nothing_sent(run, run)
    return json.loads(json.dumps(runs, default=str))


@router.get("/runs/{run_id}", response_class=HTMLResponse)
def run_page(
    request: Request, run_id: int, status: Status = "", q: Search = "", page: PageNo = 1
) -> HTMLResponse:
    run = _existing_run(run_id)
    totals = read.run_totals(run_id, engine=_engine())
    context = {
        "run": run,
        "name": _mailing_names().get(run["mailing"], run["mailing"]),
        "totals": totals,
        "nothing_sent": render.nothing_sent(run, totals),
        "dag_run_url": _dag_run_url(request, run),
        **_sending(run, totals),
        "statuses": read.statuses_of(run.get("channel")),
        "status": status,
        "q": q,
        "page": page,
        "contacts": request.state.segmail_contacts,
    }
    if context["contacts"]:
        rows, total = read.run_page(_engine(), run_id, status=status or None, search=q or None, page=page)
        context.update(
            rows=rows, total=total, pages=_pages(total), reasons=read.skip_reasons(_engine(), run_id)
        )
    return _page(request, "run.html", tab="runs", **context)


@router.get("/api/runs/{run_id}/mails", dependencies=[ContactsUser])
def run_mails_data(run_id: int, status: Status = "", q: Search = "", page: PageNo = 1) -> dict:
    _existing_run(run_id)
    rows, total = read.run_page(_engine(), run_id, status=status or None, search=q or None, page=page)
    return {"total": total, "page": page, "mails": json.loads(json.dumps(rows, default=str))}


@router.get("/runs/{run_id}/mails.csv", dependencies=[ContactsUser])
def run_mails_csv(run_id: int, status: Status = "", q: Search = "") -> StreamingResponse:
    _existing_run(run_id)
    rows = read.iter_run_mails(_engine(), run_id, status=status or None, search=q or None)
    return render.csv_download(rows, MAILS_CSV_HEADER, f"mailing-run-{run_id}.csv")


@router.get("/dag-runs/{dag_id}/{dag_run_id:path}", response_class=HTMLResponse)
def dag_run_page(request: Request, dag_id: str, dag_run_id: str) -> Response:
    """The "Mailing run" tab of a DAG run in Airflow's UI: redirect to segmail's run of that DAG run."""
    if "\x00" in dag_id + dag_run_id:
        raise HTTPException(404, "There is no such DAG run.")
    if not dag_id.startswith(MAILING_DAG_PREFIX):
        message = f"{dag_id} is not a mailing DAG: only mailing__<slug> DAG runs have a mailing run."
        return _page(request, "error.html", status_code=404, message=message)
    slug = dag_id.removeprefix(MAILING_DAG_PREFIX)
    run_id = read.mailing_run_id(mailing=slug, dag_run_id=dag_run_id, engine=_engine())
    if run_id is None:
        message = (
            f"DAG run {dag_run_id} of {dag_id} has no mailing run yet: its audience is fixed by the "
            "freeze_audience task (a run that failed before that never gets one)."
        )
        return _page(request, "error.html", status_code=404, message=message)
    return RedirectResponse(f"{_base(request)}/runs/{run_id}", status_code=303)


# ---------------------------------------------------------------- contacts (personal data)


@router.get("/contacts", response_class=HTMLResponse, dependencies=[ContactsUser])
def contacts_page(request: Request, q: Search = "") -> HTMLResponse:
    found = read.find_contacts(_engine(), q) if q else []
    return _page(request, "contacts.html", q=q, found=found, tab="contacts")


@router.get("/contacts/{contact_id}", response_class=HTMLResponse, dependencies=[ContactsUser])
def contact_page(request: Request, contact_id: int) -> HTMLResponse:
    detail = read.contact_detail(_engine(), contact_id)
    if detail is None:
        raise HTTPException(404, f"There is no contact #{contact_id}.")
    return _page(request, "contact.html", tab="contacts", shown=read.CONTACT_ROWS, **detail)


@router.get("/suppressions", response_class=HTMLResponse, dependencies=[ContactsUser])
def suppressions_page(request: Request, q: Search = "", page: PageNo = 1) -> HTMLResponse:
    rows, total = read.suppressions_page(_engine(), search=q or None, page=page)
    return _page(
        request,
        "suppressions.html",
        rows=rows,
        total=total,
        page=page,
        pages=_pages(total),
        q=q,
        tab="suppressions",
    )


@router.get("/suppressions.csv", dependencies=[ContactsUser])
def suppressions_csv(q: Search = "") -> StreamingResponse:
    rows = read.iter_suppressions(_engine(), search=q or None)
    return render.csv_download(rows, SUPPRESSIONS_CSV_HEADER, "suppressions.csv")


# ---------------------------------------------------------------- imports


@router.get("/imports", response_class=HTMLResponse)
def imports_page(request: Request) -> HTMLResponse:
    from segmail.web.rejected_rows import kept_a_copy

    imports = read.recent_imports(limit=50, engine=_engine())
    for found in imports:
        found["rows_back"] = bool(found["rejected"]) and kept_a_copy(found)
    return _page(request, "imports.html", imports=imports, tab="imports")


def _existing_import(import_run_id: int) -> dict:
    found = read.import_run(_engine(), import_run_id)
    if found is None:
        raise HTTPException(404, f"There is no import #{import_run_id}.")
    return found


@router.get("/imports/{import_run_id}/issues.csv", dependencies=[ContactsUser])
def import_issues_csv(import_run_id: int) -> StreamingResponse:
    from segmail.imports.report import REPORT_HEADER

    _existing_import(import_run_id)
    rows = (dict(zip(REPORT_HEADER, r, strict=True)) for r in read.iter_issues(_engine(), import_run_id))
    return render.csv_download(rows, list(REPORT_HEADER), f"import-{import_run_id}-issues.csv")


@router.get("/imports/{import_run_id}/rejected.csv", dependencies=[ContactsUser])
def import_rejected_csv(request: Request, import_run_id: int) -> Response:
    """The rejected rows as they were sent, plus a Reason column: fix them and import the file again."""
    from segmail.web.rejected_rows import OriginalUnavailable, rejected_rows_csv

    found = _existing_import(import_run_id)
    try:
        chunks = rejected_rows_csv(found, read.rejected_reasons(_engine(), import_run_id))
    except OriginalUnavailable as exc:
        issues = f"{_base(request)}/imports/{import_run_id}/issues.csv"
        return _page(request, "error.html", status_code=404, message=f"{exc}.", issues=issues)
    stem = found["file_name"].rsplit(".", 1)[0]
    return render.csv_response(chunks, f"{stem}-rejected-rows.csv")


# ---------------------------------------------------------------- the navigation icon

_ICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" fill="none" stroke="{}" stroke-width="2"'
    ' stroke-linecap="round" stroke-linejoin="round"><rect x="3" y="5" width="18" height="14" rx="2"/>'
    '<path d="m3 7 9 6 9-6"/></svg>'
)


@router.get("/icon.svg")
def icon() -> Response:
    """An envelope in Airflow's foreground colour, for the sidebar entry."""
    return Response(_ICON.format("#1b2232"), media_type="image/svg+xml")


@router.get("/icon-dark.svg")
def icon_dark() -> Response:
    return Response(_ICON.format("#f8fafc"), media_type="image/svg+xml")
