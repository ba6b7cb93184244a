"""Read-side queries for the CLI, the DAG summaries and (later) the monitoring pages."""

from __future__ import annotations

from sqlalchemy import Engine, select

from segmail.db import session_scope
from segmail.models import ImportRun

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
            .where(ImportRun.file_name == file_name, ImportRun.file_sha256 == sha256,
                   ImportRun.status == "succeeded")
            .order_by(ImportRun.id.desc())
            .limit(1)
        )
