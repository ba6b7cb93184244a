"""FastAPI app for the monitoring pages. Every route depends on Airflow's `get_user`, so a request
without a valid Airflow login (bearer token or the UI's `_token` cookie) gets 401/403."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from segmail.spreadsheet import spreadsheet_safe
from segmail.store import read

if TYPE_CHECKING:
    from airflow.api_fastapi.auth.managers.models.base_user import BaseUser
    from sqlalchemy import Engine

TEMPLATES = Environment(
    loader=FileSystemLoader(str(Path(__file__).with_name("templates"))),
    autoescape=select_autoescape(["html"]),
)


async def require_login(request: Request) -> BaseUser:
    """Airflow's own check (as `get_user`): a bearer token, else the UI's `_token` cookie; 401/403 otherwise.

    Imported at request time, so processes that merely load the plugin (workers, scheduler) do not
    import the api-server's security stack."""
    from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN
    from airflow.api_fastapi.core_api.security import resolve_user_from_token

    authorization = request.headers.get("authorization", "")
    if authorization.lower().startswith("bearer "):
        return await resolve_user_from_token(authorization[7:].strip())
    return await resolve_user_from_token(request.cookies.get(COOKIE_NAME_JWT_TOKEN))


def _engine() -> Engine:
    from segmail.store.db import default_engine

    return default_engine()


def _base(request: Request) -> str:
    """Where this app is mounted (`/segmail` in the api-server), for links and redirects."""
    return request.scope.get("root_path", "").rstrip("/")


def _page(request: Request, template: str, *, status_code: int = 200, **context) -> HTMLResponse:
    html = TEMPLATES.get_template(template).render(base=_base(request), **context)
    return HTMLResponse(html, status_code=status_code)


def _pages(total: int) -> int:
    return max(1, -(-total // read.PAGE_SIZE))


def _csv(rows: Iterable[dict], header: list[str], filename: str) -> StreamingResponse:
    def generate() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(header)
        for row in rows:
            writer.writerow([spreadsheet_safe(row.get(h)) for h in header])
            if buffer.tell() > 65536:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    return StreamingResponse(
        generate(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


MAILS_CSV_HEADER = [
    "id",
    "external_id",
    "first_name",
    "last_name",
    "email",
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

router = APIRouter()


def create_app() -> FastAPI:
    app = FastAPI(title="segmail", dependencies=[Depends(require_login)], docs_url=None, redoc_url=None)
    app.include_router(router)
    return app


@router.get("/", response_class=HTMLResponse)
def runs_page(request: Request, mailing: str | None = None) -> HTMLResponse:
    runs = read.mailing_runs(mailing=mailing or None, limit=30, engine=_engine())
    peak = max([r["sent"] + r["failed"] + r["skipped"] for r in runs] + [1])
    return _page(request, "runs.html", runs=runs, peak=peak, mailing=mailing or "")


@router.get("/api/runs")
def runs_data(mailing: str | None = None, limit: int = Query(30, le=500)) -> list[dict]:
    return json.loads(
        json.dumps(read.mailing_runs(mailing=mailing, limit=limit, engine=_engine()), default=str)
    )


@router.get("/runs/{run_id}", response_class=HTMLResponse)
def run_page(request: Request, run_id: int, status: str = "", q: str = "", page: int = Query(1, ge=1)):
    rows, total = read.run_page(_engine(), run_id, status=status or None, search=q or None, page=page)
    return _page(
        request,
        "run.html",
        run_id=run_id,
        rows=rows,
        total=total,
        page=page,
        pages=_pages(total),
        status=status,
        q=q,
        statuses=read.STATUSES,
        totals=read.run_totals(run_id, engine=_engine()),
    )


@router.get("/api/runs/{run_id}/mails")
def run_mails_data(run_id: int, status: str = "", q: str = "", page: int = Query(1, ge=1)) -> dict:
    rows, total = read.run_page(_engine(), run_id, status=status or None, search=q or None, page=page)
    return {"total": total, "page": page, "mails": json.loads(json.dumps(rows, default=str))}


@router.get("/runs/{run_id}/mails.csv")
def run_mails_csv(run_id: int, status: str = "", q: str = "") -> StreamingResponse:
    rows = read.iter_run_mails(_engine(), run_id, status=status or None, search=q or None)
    return _csv(rows, MAILS_CSV_HEADER, f"mailing-run-{run_id}.csv")


@router.get("/dag-runs/{dag_id}/{dag_run_id:path}", response_class=HTMLResponse)
def dag_run_page(request: Request, dag_id: str, dag_run_id: str) -> Response:
    """The "Mailing run" tab of a DAG run in Airflow's UI: redirect to segmail's run of that DAG run."""
    if not dag_id.startswith(MAILING_DAG_PREFIX):
        message = f"{dag_id} is not a mailing DAG: only mailing__<slug> DAG runs have a mailing run."
        return _page(request, "no_run.html", status_code=404, message=message)
    slug = dag_id.removeprefix(MAILING_DAG_PREFIX)
    run_id = read.mailing_run_id(mailing=slug, dag_run_id=dag_run_id, engine=_engine())
    if run_id is None:
        message = (
            f"DAG run {dag_run_id} of {dag_id} has no mailing run yet: its audience is fixed by the "
            "freeze_audience task (a run skipped as too late, or failed before that, never gets one)."
        )
        return _page(request, "no_run.html", status_code=404, message=message)
    return RedirectResponse(f"{_base(request)}/runs/{run_id}", status_code=303)


@router.get("/contacts", response_class=HTMLResponse)
def contacts_page(request: Request, q: str = "") -> HTMLResponse:
    found = read.find_contacts(_engine(), q) if q else []
    return _page(request, "contacts.html", q=q, found=found)


@router.get("/contacts/{contact_id}", response_class=HTMLResponse)
def contact_page(request: Request, contact_id: int) -> HTMLResponse:
    detail = read.contact_detail(_engine(), contact_id)
    if detail is None:
        raise HTTPException(404, f"no contact {contact_id}")
    return _page(request, "contact.html", **detail)


@router.get("/suppressions", response_class=HTMLResponse)
def suppressions_page(request: Request, q: str = "", page: int = Query(1, ge=1)) -> HTMLResponse:
    rows, total = read.suppressions_page(_engine(), search=q or None, page=page)
    return _page(request, "suppressions.html", rows=rows, total=total, page=page, pages=_pages(total), q=q)


@router.get("/suppressions.csv")
def suppressions_csv(q: str = "") -> StreamingResponse:
    rows = read.iter_suppressions(_engine(), search=q or None)
    return _csv(rows, SUPPRESSIONS_CSV_HEADER, "suppressions.csv")


@router.get("/imports", response_class=HTMLResponse)
def imports_page(request: Request) -> HTMLResponse:
    return _page(request, "imports.html", imports=read.recent_imports(limit=50, engine=_engine()))


@router.get("/imports/{import_run_id}/issues.csv")
def import_issues_csv(import_run_id: int) -> StreamingResponse:
    from segmail.imports.report import REPORT_HEADER

    rows = (dict(zip(REPORT_HEADER, r, strict=True)) for r in read.iter_issues(_engine(), import_run_id))
    return _csv(rows, list(REPORT_HEADER), f"import-{import_run_id}-issues.csv")
