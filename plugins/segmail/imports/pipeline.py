"""Contact import: stream a CSV file into staging tables, then apply it with set-based SQL.

One file is one transaction: the staging load, in-file duplicates, matching, conflicts, contact
upserts and segment memberships either all land or none do; a file that cannot be read is
rejected whole and the database stays as it was. No query runs per row; PostgreSQL is fed by
COPY text rendered in the worker processes, SQLite by executemany. Only rows that change something
are written, so importing the same file twice changes nothing the second time. The phase timer's
table is logged with each import (and printed by `make bench-import`).

The phases: `staging` with `chunks` (read, validate, stage), `resolve` (matching, conflicts, what
a new contact needs, unknown references, what each row changes) with `duplicates`, `apply`
(contacts, memberships).
This module keeps the run's bookkeeping (segmail_import_runs) and the transaction around them.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from sqlalchemy import Connection, Engine, text

from segmail.errors import FileRejected
from segmail.imports import apply, duplicates, resolve, staging
from segmail.imports.csvfile import CsvLayout, open_layout
from segmail.imports.report import write_issue_report
from segmail.store.db import default_engine, is_postgres
from segmail.store.models import ImportStatus, OptOutSource
from segmail.store.read import IMPORT_COUNTS

log = logging.getLogger(__name__)
MODES = ("merge", "replace")
_PG_IMPORT_LOCK = 7_421_001  # advisory lock id: one import applies at a time
# For this transaction only: hash joins and sorts of a million staged rows stay in memory (the
# update of every stored contact hashes the staged rows), a bulk load builds its indexes in
# one pass (imports.bulkload), and no statement waits for JIT compilation.
_PG_SETTINGS = {"work_mem": "256MB", "maintenance_work_mem": "256MB", "jit": "off"}


@dataclass
class ImportResult:
    import_run_id: int
    file_name: str
    status: ImportStatus
    mode: str
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    duplicates: int = 0
    warnings: int = 0
    error: str | None = None
    report_path: str | None = None

    def as_dict(self) -> dict:
        """Plain values (XCom, the CLI's JSON)."""
        return {**asdict(self), "status": str(self.status)}

    def summary_line(self) -> str:
        if self.status != ImportStatus.SUCCEEDED:
            return f"{self.file_name}: {self.status}: {self.error}"
        return (
            f"{self.file_name}: {self.rows} rows, {self.created} created, {self.updated} updated, "
            f"{self.unchanged} unchanged, {self.rejected} rejected, {self.duplicates} duplicates, "
            f"{self.warnings} warnings"
        )


def file_sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def import_file(
    path: str | Path,
    *,
    mode: str = "merge",
    engine: Engine | None = None,
    source: str = "cli",
    report_path: str | Path | None = None,
    now: datetime | None = None,
    chunk_size: int = 10_000,
) -> ImportResult:
    """Import one contact file atomically; rejected rows are stored as issues, never half-applied."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    path = Path(path)
    engine = engine or default_engine()
    now = now or datetime.now(UTC)
    sha = file_sha256(path) if path.is_file() else ""
    run_id = _start_run(engine, file_name=path.name, sha=sha, mode=mode, source=source, now=now)
    result = ImportResult(run_id, path.name, ImportStatus.RUNNING, mode)
    try:
        layout = open_layout(path)
        with engine.begin() as conn:
            _run_phases(
                conn, path=path, layout=layout, mode=mode, result=result, now=now, chunk_size=chunk_size
            )
    except FileRejected as exc:
        result.status, result.error = ImportStatus.REJECTED, str(exc)
    except Exception as exc:
        result.status, result.error = ImportStatus.FAILED, f"{type(exc).__name__}: {exc}"
        _finish_run(engine, result, now=datetime.now(UTC))
        raise
    if report_path is not None and result.status == ImportStatus.SUCCEEDED:
        result.report_path = str(write_issue_report(engine, run_id, Path(report_path)))
    _finish_run(engine, result, now=datetime.now(UTC))
    return result


def _start_run(engine: Engine, *, file_name: str, sha: str, mode: str, source: str, now: datetime) -> int:
    with engine.begin() as conn:
        return conn.execute(
            text(
                f"INSERT INTO segmail_import_runs (file_name, file_sha256, mode, source, status,"
                f" {', '.join(IMPORT_COUNTS)}, started_at)"
                f" VALUES (:f, :sha, :mode, :source, :status, {', '.join('0' for _ in IMPORT_COUNTS)}, :now)"
                f" RETURNING id"
            ),
            {
                "f": file_name,
                "sha": sha,
                "mode": mode,
                "source": source[:50],
                "status": ImportStatus.RUNNING,
                "now": now,
            },
        ).scalar_one()


def _finish_run(engine: Engine, result: ImportResult, *, now: datetime) -> None:
    counts = ", ".join(f"{name}=:{name}" for name in IMPORT_COUNTS)
    with engine.begin() as conn:
        conn.execute(
            text(
                f"UPDATE segmail_import_runs SET status=:status, error=:error, {counts},"
                f" report_path=:report_path, finished_at=:now WHERE id=:import_run_id"
            ),
            {**result.as_dict(), "now": now},
        )


class _PhaseTimer:
    """Logs how long each phase of an import took, so slow imports can be explained."""

    def __init__(self) -> None:
        self.last = time.perf_counter()
        self.phases: dict[str, float] = {}

    def __call__(self, phase: str) -> None:
        now = time.perf_counter()
        self.phases[phase] = round(now - self.last, 3)
        self.last = now


def _run_phases(
    conn: Connection,
    *,
    path: Path,
    layout: CsvLayout,
    mode: str,
    result: ImportResult,
    now: datetime,
    chunk_size: int,
) -> None:
    """The phases, in one transaction (the caller's)."""
    pg = is_postgres(conn.engine)
    if pg:
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_IMPORT_LOCK})
        for setting, value in _PG_SETTINGS.items():
            conn.exec_driver_sql(f"SET LOCAL {setting} = '{value}'")
    timer = _PhaseTimer()
    staged = _stage(conn, path=path, layout=layout, result=result, chunk_size=chunk_size)
    timer("read, validate and stage")
    result.warnings += _resolve(conn, result=result, repeated_spots=staged.repeated_spots, timer=timer)
    highest_id = resolve.resolve_rows(conn, mode=mode if layout.has_segments else None)
    same_contact = duplicates.same_contact_duplicates(conn)
    result.duplicates += duplicates.mark_duplicates(conn, result.import_run_id, same_contact, resolved=True)
    timer("resolve changes")

    source = f"{OptOutSource.IMPORT}:{path.name}"
    updated = apply.write_contacts(
        conn, now=now, run_id=result.import_run_id, source=source, highest_id=highest_id
    )
    timer("write contacts")
    if layout.has_segments:
        apply.apply_memberships(conn, mode, highest_id=highest_id)
    timer("write memberships")

    _count_outcomes(conn, result, updated=updated)
    result.status = ImportStatus.SUCCEEDED
    log.info(
        "import run %s: %s; phases (s): %s",
        result.import_run_id,
        result.summary_line(),
        timer.phases,
        extra={"phases": timer.phases},
    )
    staging.drop_staging(conn)


def _stage(
    conn: Connection, *, path: Path, layout: CsvLayout, result: ImportResult, chunk_size: int
) -> staging.Staged:
    """Staging tables, filled from the file; the segments that exist are locked first."""
    staging.create_staging(conn)
    segments = resolve.lock_segments(conn)
    staged = staging.stage_file(
        conn, path=path, layout=layout, run_id=result.import_run_id, chunk_size=chunk_size, segments=segments
    )
    result.rows, result.rejected, result.warnings = staged.rows, staged.rejected, staged.warnings
    return staged


def _resolve(
    conn: Connection, *, result: ImportResult, repeated_spots: np.ndarray, timer: _PhaseTimer
) -> int:
    """Matching, new-contact needs, in-file duplicates, unknown references. Returns the warnings."""
    run_id = result.import_run_id
    # A row matching two different contacts is a conflict; a row matching none creates a contact
    # and needs what a new contact needs; the ignored cells of the other rows only warn.
    result.rejected += resolve.match_contacts(conn, run_id)
    rejected, warnings = resolve.reject_incomplete_new_contacts(conn, run_id)
    result.rejected += rejected
    timer("match contacts")

    # A row sharing a key with a later row that lands yields to it.
    found = duplicates.in_file_duplicates(conn, repeated_spots)
    result.duplicates += duplicates.mark_duplicates(conn, run_id, found)
    timer("in-file duplicates")

    # Unknown salespeople and segments only warn.
    warnings += resolve.warn_unknown_salespeople(conn, run_id)
    warnings += resolve.warn_unknown_segments(conn, run_id)
    timer("references")
    return warnings


def _count_outcomes(conn: Connection, result: ImportResult, *, updated: int) -> None:
    """Created, updated (fields or memberships) and unchanged, from the resolved rows and the
    number of stored contacts written."""
    counts = dict(
        conn.execute(text(f"SELECT is_new, COUNT(*) FROM {staging.RESOLVED} GROUP BY is_new")).all()
    )
    result.created, result.updated = counts.get(1, 0), updated
    result.unchanged = counts.get(0, 0) - updated
