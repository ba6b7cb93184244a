"""Read-side queries for the CLI, the DAG summaries and (later) the monitoring pages."""

from __future__ import annotations

from sqlalchemy import Engine, select

from segmail.store.db import session_scope
from segmail.store.models import ImportRun

IMPORT_COUNTS = ("rows", "created", "updated", "unchanged", "rejected", "duplicates", "warnings")


def recent_imports(*, limit: int = 20, engine: Engine | None = None) -> list[dict]:
    with session_scope(engine) as session:
        runs = session.scalars(select(ImportRun).order_by(ImportRun.id.desc()).limit(limit))
        return [
            {
                "id": r.id,
                "file_name": r.file_name,
                "status": r.status,
                "mode": r.mode,
                "source": r.source,
                **{k: getattr(r, k) for k in IMPORT_COUNTS},
                "error": r.error,
                "report_path": r.report_path,
                "started_at": r.started_at,
                "finished_at": r.finished_at,
            }
            for r in runs
        ]


def finished_import(*, file_name: str, sha256: str, engine: Engine | None = None) -> ImportRun | None:
    """The succeeded import of this exact file (name and content), if there is one."""
    with session_scope(engine) as session:
        return session.scalar(
            select(ImportRun)
            .where(
                ImportRun.file_name == file_name,
                ImportRun.file_sha256 == sha256,
                ImportRun.status == "succeeded",
            )
            .order_by(ImportRun.id.desc())
            .limit(1)
        )


def mailing_runs(*, mailing: str | None = None, limit: int = 20, engine: Engine | None = None) -> list[dict]:
    """Latest runs with their counts per status (live while a run is sending)."""
    import json

    from sqlalchemy import text

    from segmail.mailings.send import runs_totals
    from segmail.store.db import default_engine

    engine = engine or default_engine()
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT id, mailing, dag_run_id, status, dry_run, options, created_at, finished_at"
                " FROM segmail_mailing_runs"
                + (" WHERE mailing = :m" if mailing else "")
                + " ORDER BY id DESC LIMIT :n"
            ),
            {"m": mailing, "n": limit},
        ).all()
    all_totals = runs_totals([r.id for r in rows], engine=engine)
    out = []
    for r in rows:
        totals = all_totals[r.id]
        out.append(
            {
                "run": r.id,
                "mailing": r.mailing,
                "dag_run_id": r.dag_run_id,
                "status": r.status,
                "dry_run": bool(r.dry_run),
                "sent": totals["sent"],
                "failed": totals["failed"],
                "skipped": totals["skipped"],
                "pending": totals["pending"],
                "by_language": totals["by_language"],
                "options": json.loads(r.options or "{}"),
                "created_at": r.created_at,
                "finished_at": r.finished_at,
            }
        )
    return out


def run_deliveries(run_id: int, *, failed_only: bool = False, engine: Engine | None = None) -> list[dict]:
    from sqlalchemy import text

    from segmail.store.db import default_engine

    engine = engine or default_engine()
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT d.id, d.contact_id, c.external_id, d.email, d.language, d.status, d.reason, d.smtp_code,"
                " d.smtp_response, d.message_id, d.attempts, d.sent_at FROM segmail_deliveries d"
                " LEFT JOIN segmail_contacts c ON c.id = d.contact_id WHERE d.mailing_run_id = :r"
                + (" AND d.status = 'failed'" if failed_only else "")
                + " ORDER BY d.id"
            ),
            {"r": run_id},
        ).all()
    return [dict(r._mapping) for r in rows]


def test_mail_log(*, limit: int = 20, engine: Engine | None = None) -> list[dict]:
    from segmail.store.models import SentTestMail

    with session_scope(engine) as session:
        return [
            {
                "id": t.id,
                "mailing": t.mailing,
                "language": t.language,
                "recipient": t.recipient,
                "subject": t.subject,
                "status": t.status,
                "error": t.error or "",
                "sent_at": t.sent_at,
            }
            for t in session.scalars(select(SentTestMail).order_by(SentTestMail.id.desc()).limit(limit))
        ]
