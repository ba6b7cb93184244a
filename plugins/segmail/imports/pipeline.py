"""Contact import: stream a CSV file into a staging table, then apply it with set-based SQL.

One file is one transaction: the staging load, in-file duplicates, matching, conflicts, contact
upserts and segment memberships either all land or none do. No query runs per row; PostgreSQL is
fed by COPY, SQLite by executemany.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import multiprocessing
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Connection, Engine, text

from segmail import settings
from segmail.errors import FileRejected
from segmail.imports.csvfile import CsvLayout, iter_chunks, open_layout
from segmail.imports.report import write_issue_report
from segmail.imports.rows import RECORD_FIELDS, Issue, ValidatedChunk, validate_chunk
from segmail.store.db import bulk_insert, default_engine, is_postgres

log = logging.getLogger(__name__)
MODES = ("merge", "replace")
STAGE = "segmail_stage"
STAGE_SEG = "segmail_stage_seg"
STAGE_MATCH = "segmail_stage_match"
RESOLVED = "segmail_stage_resolved"
SEG_RESOLVED = "segmail_stage_seg_resolved"
_PG_IMPORT_LOCK = 7_421_001  # advisory lock id: one import applies at a time


@dataclass
class ImportResult:
    import_run_id: int
    file_name: str
    status: str  # succeeded | rejected | failed
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
        return asdict(self)

    def summary_line(self) -> str:
        if self.status != "succeeded":
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
    result = ImportResult(run_id, path.name, "running", mode)
    try:
        layout = open_layout(path)
        with engine.begin() as conn:
            _apply(conn, path=path, layout=layout, mode=mode, result=result, now=now, chunk_size=chunk_size)
    except FileRejected as exc:
        result.status, result.error = "rejected", str(exc)
    except Exception as exc:
        result.status, result.error = "failed", f"{type(exc).__name__}: {exc}"
        _finish_run(engine, result, now=datetime.now(UTC))
        raise
    if report_path is not None and result.status == "succeeded":
        result.report_path = str(write_issue_report(engine, run_id, Path(report_path)))
    _finish_run(engine, result, now=datetime.now(UTC))
    return result


def _start_run(engine: Engine, *, file_name: str, sha: str, mode: str, source: str, now: datetime) -> int:
    with engine.begin() as conn:
        return conn.execute(
            text(
                "INSERT INTO segmail_import_runs (file_name, file_sha256, mode, source, status, rows, created,"
                " updated, unchanged, rejected, duplicates, warnings, started_at)"
                " VALUES (:f, :sha, :mode, :source, 'running', 0, 0, 0, 0, 0, 0, 0, :now) RETURNING id"
            ),
            {"f": file_name, "sha": sha, "mode": mode, "source": source[:50], "now": now},
        ).scalar_one()


def _finish_run(engine: Engine, result: ImportResult, *, now: datetime) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE segmail_import_runs SET status=:status, error=:error, rows=:rows, created=:created,"
                " updated=:updated, unchanged=:unchanged, rejected=:rejected, duplicates=:duplicates,"
                " warnings=:warnings, report_path=:report_path, finished_at=:now WHERE id=:import_run_id"
            ),
            {**result.as_dict(), "now": now},
        )


def _create_staging(conn: Connection) -> None:
    suffix = " ON COMMIT DROP" if is_postgres(conn.engine) else ""
    _drop_staging(conn)
    conn.exec_driver_sql(
        f"CREATE TEMPORARY TABLE {STAGE} (line_no INTEGER PRIMARY KEY, external_id VARCHAR(200),"
        " email VARCHAR(320), email_key VARCHAR(320), country_code VARCHAR(2), mobile_e164 VARCHAR(20),"
        " first_name VARCHAR(200), last_name VARCHAR(200), account_number VARCHAR(100),"
        " organization VARCHAR(300), language VARCHAR(35), salesperson_code VARCHAR(50), opt_out INTEGER,"
        f" state VARCHAR(10) DEFAULT 'ok'){suffix}"
    )
    conn.exec_driver_sql(
        f"CREATE TEMPORARY TABLE {STAGE_SEG} (line_no INTEGER, name_key VARCHAR(200), name VARCHAR(200)){suffix}"
    )
    conn.exec_driver_sql(
        f"CREATE TEMPORARY TABLE {STAGE_MATCH} (line_no INTEGER, contact_id INTEGER){suffix}"
    )


def _drop_staging(conn: Connection) -> None:
    for table in (STAGE, STAGE_SEG, STAGE_MATCH, RESOLVED, SEG_RESOLVED):
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")


def _create_as(conn: Connection, table: str, select_sql: str, params: dict | None = None) -> None:
    """Bulk results go into new tables (CREATE TABLE AS): cheaper than rewriting staged rows."""
    suffix = " ON COMMIT DROP" if is_postgres(conn.engine) else ""
    conn.execute(text(f"CREATE TEMPORARY TABLE {table}{suffix} AS {select_sql}"), params or {})


def _store_issues(conn: Connection, run_id: int, issues: Iterable[Issue]) -> int:
    rows = [(run_id, i.line_no, i.column, i.value, i.severity, i.reason) for i in issues]
    bulk_insert(
        conn,
        "segmail_import_issues",
        ("import_run_id", "line_no", "column_name", "value", "severity", "reason"),
        rows,
    )
    return len(rows)


def import_workers() -> int:
    """Validation processes: SEGMAIL_IMPORT_WORKERS, else one per core (at most 4); 1 = in-process."""
    return settings.current().import_workers


def _validated_chunks(
    path: Path, layout: CsvLayout, *, size: int, workers: int
) -> Iterator[tuple[int, ValidatedChunk]]:
    """(rows read, validated chunk) in file order. With workers > 1 the chunks are validated in forked
    processes while this one loads the database; at most 2 chunks per worker are in flight, so memory
    stays bounded whatever the file size. Forked children never touch the parent's connections and
    leave through os._exit, so those stay intact."""
    chunks = iter_chunks(path, layout, size=size)
    first = next(chunks, None)
    if first is None:
        return
    second = next(chunks, None)
    if second is None or workers <= 1:
        for chunk in (first, second) if second is not None else (first,):
            yield len(chunk.line_numbers) + len(chunk.malformed), validate_chunk(chunk)
        for chunk in chunks:
            yield len(chunk.line_numbers) + len(chunk.malformed), validate_chunk(chunk)
        return
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        pending: deque[tuple[int, Future]] = deque()
        for chunk in itertools.chain((first, second), chunks):
            pending.append(
                (len(chunk.line_numbers) + len(chunk.malformed), pool.submit(validate_chunk, chunk))
            )
            if len(pending) >= 2 * workers:
                rows, future = pending.popleft()
                yield rows, future.result()
        while pending:
            rows, future = pending.popleft()
            yield rows, future.result()


class _PhaseTimer:
    """Logs how long each phase of an import took, so slow imports can be explained."""

    def __init__(self) -> None:
        self.last = time.perf_counter()
        self.phases: dict[str, float] = {}

    def __call__(self, phase: str) -> None:
        now = time.perf_counter()
        self.phases[phase] = round(now - self.last, 3)
        self.last = now


def _apply(
    conn: Connection,
    *,
    path: Path,
    layout: CsvLayout,
    mode: str,
    result: ImportResult,
    now: datetime,
    chunk_size: int,
) -> None:
    pg = is_postgres(conn.engine)
    if pg:
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_IMPORT_LOCK})
    _create_staging(conn)
    run_id = result.import_run_id
    timer = _PhaseTimer()
    warnings = 0
    if layout.ignored:
        warnings += _store_issues(
            conn,
            run_id,
            [Issue(1, column, None, "warning", "unknown column ignored") for column in layout.ignored],
        )

    # 1. Stream, validate, stage.
    for rows, checked in _validated_chunks(path, layout, size=chunk_size, workers=import_workers()):
        result.rows += rows
        result.rejected += checked.rejected_rows
        bulk_insert(conn, STAGE, RECORD_FIELDS, checked.records)
        bulk_insert(conn, STAGE_SEG, ("line_no", "name_key", "name"), checked.segments)
        warnings += sum(1 for i in checked.issues if i.severity == "warning")
        _store_issues(conn, run_id, checked.issues)
    if pg:
        conn.exec_driver_sql(f"ANALYZE {STAGE}")
        conn.exec_driver_sql(f"ANALYZE {STAGE_SEG}")
    timer("read, validate and stage")

    # 2. In-file duplicates: a row sharing a key with a later row yields to it.
    result.duplicates += _mark_duplicates(conn, run_id, _in_file_duplicates(conn))
    timer("in-file duplicates")

    # 3. Match stored contacts; a row matching two different contacts is a conflict. Unknown
    #    salesperson codes and segments only warn.
    result.rejected += _match_contacts(conn, run_id)
    warnings += _warn_unknown_salespeople(conn, run_id)
    if layout.has_segments:
        warnings += _resolve_segments(conn, run_id)
    else:
        _create_as(conn, SEG_RESOLVED, f"SELECT line_no, 0 AS segment_id FROM {STAGE_SEG} WHERE 1 = 0")
    timer("match contacts")

    # 4. One resolved row per staged row that lands: its contact id (new contacts get
    #    base + line number: gaps are harmless), and whether its fields or segments change anything.
    base = conn.execute(text("SELECT COALESCE(MAX(id), 0) FROM segmail_contacts")).scalar_one()
    _resolve_rows(conn, base=base, mode=mode if layout.has_segments else None)
    result.duplicates += _mark_duplicates(conn, run_id, _same_contact_duplicates(conn), resolved=True)
    timer("resolve changes")

    # 5. Apply.
    params = {"now": now, "run": run_id, "source": f"import:{path.name}"[:200]}
    _update_contacts(conn, params)
    _insert_contacts(conn, params)
    timer("write contacts")
    if layout.has_segments:
        _apply_memberships(conn, mode)
    timer("write memberships")

    counts = conn.execute(
        text(
            f"SELECT is_new, changed, seg_changed, COUNT(*) FROM {RESOLVED} GROUP BY is_new, changed, seg_changed"
        )
    ).all()
    for is_new, changed, seg_changed, count in counts:
        if is_new:
            result.created += count
        elif changed or seg_changed:
            result.updated += count
        else:
            result.unchanged += count
    result.warnings = warnings
    result.status = "succeeded"
    log.info("import run %s: %s; phases (s): %s", run_id, result.summary_line(), timer.phases)
    if not pg:
        _drop_staging(conn)


def _compatible(a: str, b: str) -> str:
    """Two rows (or a row and a contact) sharing an e-mail or phone are the same contact unless both
    carry different external IDs: then they are two records that happen to share an address."""
    return f"({a}.external_id IS NULL OR {b}.external_id IS NULL OR {a}.external_id = {b}.external_id)"


def _in_file_duplicates(conn: Connection) -> list[tuple[int, int, str]]:
    """(line, later line, key) for every row that a later row of the same file supersedes."""
    # Only rows whose key occurs more than once can be duplicates: find them with cheap hash
    # aggregates, then sort just those (all members of a repeated key are among them).
    repeated = (
        f"SELECT line_no FROM {STAGE} WHERE external_id IN (SELECT external_id FROM {STAGE}"
        f"  WHERE external_id IS NOT NULL GROUP BY external_id HAVING COUNT(*) > 1)"
        f" UNION SELECT line_no FROM {STAGE} WHERE email_key IN (SELECT email_key FROM {STAGE}"
        f"  WHERE email_key IS NOT NULL GROUP BY email_key HAVING COUNT(*) > 1)"
        f" UNION SELECT s.line_no FROM {STAGE} s JOIN (SELECT country_code, mobile_e164 FROM {STAGE}"
        f"  WHERE mobile_e164 IS NOT NULL GROUP BY country_code, mobile_e164 HAVING COUNT(*) > 1) p"
        f"  ON p.country_code = s.country_code AND p.mobile_e164 = s.mobile_e164"
    )
    rows = conn.execute(
        text(
            f"WITH c AS (SELECT * FROM {STAGE} WHERE line_no IN ({repeated})),"
            f" w AS (SELECT line_no, external_id,"
            f"   CASE WHEN external_id IS NOT NULL THEN MAX(line_no) OVER (PARTITION BY external_id) END AS last_ext,"
            f"   CASE WHEN email_key IS NOT NULL THEN MAX(line_no) OVER (PARTITION BY email_key) END AS last_email,"
            f"   CASE WHEN mobile_e164 IS NOT NULL THEN MAX(line_no) OVER (PARTITION BY country_code, mobile_e164)"
            f"   END AS last_phone FROM c)"
            f" SELECT w.line_no, w.last_ext, CASE WHEN {_compatible('w', 'le')} THEN w.last_email END,"
            f"   CASE WHEN {_compatible('w', 'lp')} THEN w.last_phone END"
            f" FROM w LEFT JOIN {STAGE} le ON le.line_no = w.last_email LEFT JOIN {STAGE} lp ON lp.line_no = w.last_phone"
            f" WHERE w.last_ext > w.line_no OR w.last_email > w.line_no OR w.last_phone > w.line_no"
        )
    ).all()
    found = []
    for line, by_ext, by_email, by_phone in rows:
        candidates = [
            (later, key)
            for later, key in ((by_ext, "External ID"), (by_email, "Email"), (by_phone, "Mobile Number"))
            if later and later > line
        ]
        if candidates:
            later, key = max(candidates, key=lambda c: c[0])  # ties: External ID first
            found.append((line, later, key))
    return found


def _same_contact_duplicates(conn: Connection) -> list[tuple[int, int, str]]:
    """Rows with different keys that matched the same stored contact: the last one wins."""
    rows = conn.execute(
        text(
            f"SELECT line_no, last FROM (SELECT line_no, MAX(line_no) OVER (PARTITION BY contact_id) AS last"
            f" FROM {RESOLVED} WHERE is_new = 0) AS w WHERE last > line_no"
        )
    ).all()
    return [(line, later, "the same existing contact") for line, later in rows]


def _mark_duplicates(
    conn: Connection, run_id: int, found: list[tuple[int, int, str]], *, resolved: bool = False
) -> int:
    if not found:
        return 0
    lines = [{"line": line} for line, _, _ in found]
    conn.execute(text(f"UPDATE {STAGE} SET state = 'duplicate' WHERE line_no = :line"), lines)
    if resolved:
        conn.execute(text(f"DELETE FROM {RESOLVED} WHERE line_no = :line"), lines)
    _store_issues(
        conn,
        run_id,
        [
            Issue(
                line,
                key if key[0].isupper() else None,
                None,
                "duplicate",
                f"duplicate: row {later} has {'the same ' + key if key[0].isupper() else key}"
                f" and was imported instead",
            )
            for line, later, key in found
        ],
    )
    return len(found)


def _match_contacts(conn: Connection, run_id: int) -> int:
    conn.execute(
        text(
            f"INSERT INTO {STAGE_MATCH} (line_no, contact_id)"
            f" SELECT s.line_no, c.id FROM {STAGE} s JOIN segmail_contacts c ON c.external_id = s.external_id"
            f"  WHERE s.state = 'ok'"
            f" UNION ALL SELECT s.line_no, c.id FROM {STAGE} s JOIN segmail_contacts c ON c.email_key = s.email_key"
            f"  WHERE s.state = 'ok' AND {_compatible('s', 'c')}"
            f" UNION ALL SELECT s.line_no, c.id FROM {STAGE} s JOIN segmail_contacts c"
            f"  ON c.country_code = s.country_code AND c.mobile_e164 = s.mobile_e164"
            f"  WHERE s.state = 'ok' AND {_compatible('s', 'c')}"
        )
    )
    conflicts = conn.execute(
        text(
            f"SELECT DISTINCT m.line_no, c.id, c.external_id, c.email, c.mobile_e164 FROM {STAGE_MATCH} m"
            f" JOIN segmail_contacts c ON c.id = m.contact_id"
            f" WHERE m.line_no IN (SELECT line_no FROM {STAGE_MATCH} GROUP BY line_no"
            f"  HAVING COUNT(DISTINCT contact_id) > 1)"
            f" ORDER BY m.line_no, c.id"
        )
    ).all()
    by_line: dict[int, list[str]] = {}
    for line, cid, ext, email, mobile in conflicts:
        label = f"#{cid} (" + ", ".join(v for v in (ext and f"external ID {ext}", email, mobile) if v) + ")"
        by_line.setdefault(line, []).append(label)
    if by_line:
        conn.execute(
            text(f"UPDATE {STAGE} SET state = 'conflict' WHERE line_no = :line"),
            [{"line": line} for line in by_line],
        )
        _store_issues(
            conn,
            run_id,
            [
                Issue(
                    line,
                    None,
                    None,
                    "error",
                    f"conflict: the row's keys match {len(labels)} different contacts: {'; '.join(labels)};"
                    " not merged",
                )
                for line, labels in by_line.items()
            ],
        )
    return len(by_line)


def _warn_unknown_salespeople(conn: Connection, run_id: int) -> int:
    unknown = (
        f"state = 'ok' AND salesperson_code IS NOT NULL AND NOT EXISTS"
        f" (SELECT 1 FROM segmail_salespeople p WHERE p.code = {STAGE}.salesperson_code)"
    )
    rows = conn.execute(text(f"SELECT line_no, salesperson_code FROM {STAGE} WHERE {unknown}")).all()
    if rows:
        _store_issues(
            conn,
            run_id,
            [
                Issue(
                    line,
                    "Salesperson",
                    code,
                    "warning",
                    f"unknown salesperson code {code!r}; add it with `segmail salespeople add` — not stored",
                )
                for line, code in rows
            ],
        )
        conn.execute(text(f"UPDATE {STAGE} SET salesperson_code = NULL WHERE {unknown}"))
    return len(rows)


def _resolve_segments(conn: Connection, run_id: int) -> int:
    _create_as(
        conn,
        SEG_RESOLVED,
        f"SELECT ss.line_no, g.id AS segment_id FROM {STAGE_SEG} ss"
        f" JOIN segmail_segments g ON g.name_key = ss.name_key",
    )
    conn.exec_driver_sql(f"CREATE INDEX ix_seg_resolved ON {SEG_RESOLVED} (line_no, segment_id)")
    rows = conn.execute(
        text(
            f"SELECT ss.line_no, ss.name FROM {STAGE_SEG} ss JOIN {STAGE} s ON s.line_no = ss.line_no"
            f" WHERE s.state = 'ok' AND NOT EXISTS (SELECT 1 FROM segmail_segments g WHERE g.name_key = ss.name_key)"
            f" ORDER BY ss.line_no"
        )
    ).all()
    _store_issues(
        conn,
        run_id,
        [
            Issue(
                line,
                "Segments",
                name,
                "warning",
                f"segment {name!r} does not exist and was not created; the rest of the row was imported",
            )
            for line, name in rows
        ],
    )
    return len(rows)


_OVERWRITE = (
    "external_id",
    "email",
    "email_key",
    "country_code",
    "mobile_e164",
    "first_name",
    "last_name",
    "account_number",
    "organization",
    "language",
    "salesperson_code",
)


def _resolve_rows(conn: Connection, *, base: int, mode: str | None) -> None:
    """RESOLVED(line_no, contact_id, is_new, changed, seg_changed) for every row that lands."""
    differs = " OR ".join(f"(s.{c} IS NOT NULL AND s.{c} IS DISTINCT FROM c.{c})" for c in _OVERWRITE)
    adds = (
        f"EXISTS (SELECT 1 FROM {SEG_RESOLVED} sr WHERE sr.line_no = s.line_no AND NOT EXISTS"
        f" (SELECT 1 FROM segmail_memberships mm WHERE mm.contact_id = c.id AND mm.segment_id = sr.segment_id))"
    )
    removes = (
        f"EXISTS (SELECT 1 FROM segmail_memberships mm WHERE mm.contact_id = c.id AND NOT EXISTS"
        f" (SELECT 1 FROM {SEG_RESOLVED} sr WHERE sr.line_no = s.line_no AND sr.segment_id = mm.segment_id))"
    )
    seg_changed = {None: "1 = 0", "merge": adds, "replace": f"{adds} OR {removes}"}[mode]
    _create_as(
        conn,
        RESOLVED,
        f"SELECT s.line_no, COALESCE(c.id, :base + s.line_no) AS contact_id,"
        f" CASE WHEN c.id IS NULL THEN 1 ELSE 0 END AS is_new,"
        f" CASE WHEN c.id IS NOT NULL AND ({differs} OR (s.opt_out = 1 AND NOT c.email_opt_out))"
        f"  THEN 1 ELSE 0 END AS changed,"
        f" CASE WHEN c.id IS NOT NULL AND ({seg_changed}) THEN 1 ELSE 0 END AS seg_changed"
        f" FROM {STAGE} s"
        f" LEFT JOIN (SELECT line_no, MIN(contact_id) AS contact_id FROM {STAGE_MATCH} GROUP BY line_no) m"
        f"  ON m.line_no = s.line_no"
        f" LEFT JOIN segmail_contacts c ON c.id = m.contact_id"
        f" WHERE s.state = 'ok'",
        {"base": base},
    )
    conn.exec_driver_sql(f"CREATE UNIQUE INDEX ix_resolved_line ON {RESOLVED} (line_no)")
    conn.exec_driver_sql(f"CREATE INDEX ix_resolved_contact ON {RESOLVED} (contact_id)")


def _update_contacts(conn: Connection, params: dict) -> None:
    """Non-empty cells overwrite; empty cells keep what is stored; an opt-out is never cleared."""
    target = "segmail_contacts"
    sets = ", ".join(f"{c} = COALESCE(s.{c}, {target}.{c})" for c in _OVERWRITE)
    conn.execute(
        text(
            f"UPDATE {target} SET {sets},"
            f" email_opt_out_at = CASE WHEN s.opt_out = 1 AND NOT {target}.email_opt_out THEN :now"
            f"   ELSE {target}.email_opt_out_at END,"
            f" email_opt_out_source = CASE WHEN s.opt_out = 1 AND NOT {target}.email_opt_out THEN :source"
            f"   ELSE {target}.email_opt_out_source END,"
            f" email_opt_out = CASE WHEN s.opt_out = 1 THEN TRUE ELSE {target}.email_opt_out END,"
            f" updated_at = :now, last_import_id = :run"
            f" FROM {STAGE} s JOIN {RESOLVED} r ON r.line_no = s.line_no"
            f" WHERE r.contact_id = {target}.id AND r.is_new = 0 AND (r.changed = 1 OR r.seg_changed = 1)"
        ),
        params,
    )


def _insert_contacts(conn: Connection, params: dict) -> None:
    columns = ", ".join(_OVERWRITE)
    staged = ", ".join(f"s.{c}" for c in _OVERWRITE)
    conn.execute(
        text(
            f"INSERT INTO segmail_contacts (id, {columns}, email_opt_out, email_opt_out_at, email_opt_out_source,"
            f" created_at, updated_at, last_import_id)"
            f" SELECT r.contact_id, {staged}, s.opt_out = 1, CASE WHEN s.opt_out = 1 THEN :now END,"
            f" CASE WHEN s.opt_out = 1 THEN :source END, :now, :now, :run"
            f" FROM {STAGE} s JOIN {RESOLVED} r ON r.line_no = s.line_no WHERE r.is_new = 1"
        ),
        params,
    )


def _apply_memberships(conn: Connection, mode: str) -> None:
    if mode == "replace":
        conn.execute(
            text(
                f"DELETE FROM segmail_memberships WHERE contact_id IN"
                f" (SELECT contact_id FROM {RESOLVED} WHERE seg_changed = 1)"
                f" AND NOT EXISTS (SELECT 1 FROM {RESOLVED} r JOIN {SEG_RESOLVED} sr ON sr.line_no = r.line_no"
                f"  WHERE r.contact_id = segmail_memberships.contact_id"
                f"  AND sr.segment_id = segmail_memberships.segment_id)"
            )
        )
    conn.execute(
        text(
            f"INSERT INTO segmail_memberships (contact_id, segment_id)"
            f" SELECT r.contact_id, sr.segment_id FROM {RESOLVED} r JOIN {SEG_RESOLVED} sr ON sr.line_no = r.line_no"
            f" WHERE r.is_new = 1 OR (r.seg_changed = 1 AND NOT EXISTS (SELECT 1 FROM segmail_memberships m"
            f"  WHERE m.contact_id = r.contact_id AND m.segment_id = sr.segment_id))"
        )
    )
