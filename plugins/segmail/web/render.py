"""How the monitoring pages present data: the templates, times, status badges, CSV downloads, and
what a run that sent nothing says about itself.

Times are stored in UTC. A page renders each as `<time datetime="…Z">2026-03-01 08:00:00 UTC</time>`
(to the second: no microseconds), and base.html's script rewrites it in the time zone the user chose
in Airflow's UI (else the browser's), so without JavaScript the page still shows correct UTC times.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

from fastapi.responses import StreamingResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from segmail.spreadsheet import spreadsheet_safe
from segmail.store.models import RunStatus

# Airflow's state colours (its Chakra palettes) for segmail's statuses.
PALETTES = {
    "sent": "success",
    "succeeded": "success",
    "failed": "failed",
    "rejected": "failed",
    "approved": "success",  # a run's approval (segmail_approvals)
    "requested": "queued",
    "skipped": "skipped",
    "bounced": "up_for_retry",
    "delivered": "success",  # an SMS's delivery report
    "expired": "up_for_retry",
    "pending": "queued",
    "frozen": "queued",
    "sending": "running",
    "running": "running",
}
FINISHED = (RunStatus.SUCCEEDED, RunStatus.FAILED)


def as_utc(value: datetime | str | None) -> datetime | None:
    """A stored time as an aware UTC datetime (SQLite hands back naive strings, PostgreSQL datetimes)."""
    if value is None or value == "":
        return None
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def time_tag(value: datetime | str | None) -> Markup:
    moment = as_utc(value)
    if moment is None:
        return Markup("")
    moment = moment.replace(microsecond=0)
    iso = moment.isoformat().replace("+00:00", "Z")
    return Markup('<time datetime="{}">{}</time>').format(iso, moment.strftime("%Y-%m-%d %H:%M:%S UTC"))


def badge(status: str | None, label: str | None = None) -> Markup:
    palette = PALETTES.get(status or "", "none")
    return Markup('<span class="badge {}">{}</span>').format(palette, label or status or "")


TEMPLATES = Environment(
    loader=FileSystemLoader(str(Path(__file__).with_name("templates"))),
    autoescape=select_autoescape(["html"]),
)
TEMPLATES.filters["time"] = time_tag
TEMPLATES.filters["badge"] = badge


def sent_count(totals: dict) -> int:
    """Mails that left: sent, plus sent ones that bounced later (or, for SMS, whose delivery
    report said delivered or expired)."""
    statuses = totals.get("statuses") or {}
    reported = statuses.get("delivered", 0) + statuses.get("expired", 0)
    return totals.get("sent", 0) + totals.get("bounced", 0) + reported


def nothing_sent(run: dict, totals: dict) -> str | None:
    """Why a run sent no mail, for a run that is over (None while it sends, or when it sent some)."""
    options = run.get("options") or {}
    if run["status"] == RunStatus.SKIPPED:
        return f"Skipped as too late: {options.get('skip_reason', 'the scheduled run started too late')}."
    if run["status"] == RunStatus.REJECTED:
        reason = (run.get("approval") or {}).get("reason") or "rejected at approval"
        return f"Not approved: {reason}."
    if run["dry_run"]:
        return "Dry run: every mail was rendered, none was sent."
    if run["status"] not in FINISHED or sent_count(totals):
        return None
    counts = {k: totals.get(k, 0) for k in ("skipped", "failed", "pending")}
    if not any(counts.values()):
        return "The audience was empty: no contact of the mailing's segments."
    return "No mail was sent: " + ", ".join(f"{n} {k}" for k, n in counts.items() if n) + "."


def csv_download(rows: Iterable[dict], header: list[str], filename: str) -> StreamingResponse:
    """A spreadsheet-safe CSV with a UTF-8 BOM, so Excel shows "Lucía García", not "LucÃ­a GarcÃ­a"."""

    def generate() -> Iterator[str]:
        buffer = io.StringIO()
        buffer.write("\ufeff")
        writer = csv.writer(buffer)
        writer.writerow(header)
        for row in rows:
            writer.writerow([spreadsheet_safe(row.get(h)) for h in header])
            if buffer.tell() > 65536:
                yield _drain(buffer)
        yield _drain(buffer)

    return csv_response(generate(), filename)


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


def csv_response(chunks: Iterator[str], filename: str) -> StreamingResponse:
    """A CSV download; a file name beyond ASCII goes in `filename*` (RFC 6266), an ASCII stand-in in `filename`."""
    fallback = "".join(
        ch if ch.isascii() and ch not in '"\\' and ch.isprintable() else "_" for ch in filename
    )
    disposition = f'attachment; filename="{fallback}"'
    if fallback != filename:
        disposition += f"; filename*=UTF-8''{quote(filename, safe='')}"
    return StreamingResponse(
        chunks, media_type="text/csv; charset=utf-8", headers={"Content-Disposition": disposition}
    )
