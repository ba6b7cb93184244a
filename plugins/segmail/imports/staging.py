"""Import phase 1: stream the file, validate it in chunks, load the good rows into staging tables.

Staging tables are temporary and live inside the import's transaction (ON COMMIT DROP on
PostgreSQL, dropped at the end on SQLite), so a failed import leaves nothing behind. Chunks are
validated in forked worker processes while this process loads the database; memory stays bounded
whatever the file size.
"""

from __future__ import annotations

import itertools
import multiprocessing
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, text

from segmail import settings
from segmail.imports.columns import RECORD_FIELDS, STAGE_COLUMNS
from segmail.imports.csvfile import CsvLayout, RawChunk, iter_chunks
from segmail.imports.rows import CellIssue, Issue, ValidatedChunk, validate_chunk
from segmail.store.db import bulk_insert, is_postgres
from segmail.store.models import IssueSeverity

STAGE = "segmail_stage"  # one row per valid record; `state` ok | duplicate | conflict
STAGE_SEG = "segmail_stage_seg"  # the segments named by each record
STAGE_MATCH = "segmail_stage_match"  # (line, stored contact) for each key that matches
STAGE_CELL = "segmail_stage_cell"  # ignored cells of fields a new contact needs (rows.CellIssue)
RESOLVED = "segmail_stage_resolved"  # the rows that land: contact id and what they change
SEG_RESOLVED = "segmail_stage_seg_resolved"  # (line, segment id) for segments that exist
SEG_FIELDS = ("line_no", "name_key", "name")
ISSUE_FIELDS = ("import_run_id", "line_no", "column_name", "value", "severity", "reason")


def _temporary(conn: Connection) -> str:
    return " ON COMMIT DROP" if is_postgres(conn.engine) else ""


def create_staging(conn: Connection) -> None:
    drop_staging(conn)
    columns = ", ".join(f"{name} {sql_type}" for name, sql_type in STAGE_COLUMNS)
    conn.exec_driver_sql(
        f"CREATE TEMPORARY TABLE {STAGE} ({columns}, state VARCHAR(10) DEFAULT 'ok'){_temporary(conn)}"
    )
    # TEXT: a name too long for any segment is staged, found missing and warned about like any other.
    conn.exec_driver_sql(
        f"CREATE TEMPORARY TABLE {STAGE_SEG} (line_no INTEGER, name_key TEXT, name TEXT){_temporary(conn)}"
    )
    conn.exec_driver_sql(
        f"CREATE TEMPORARY TABLE {STAGE_MATCH} (line_no INTEGER, contact_id INTEGER){_temporary(conn)}"
    )
    conn.exec_driver_sql(
        f"CREATE TEMPORARY TABLE {STAGE_CELL} (line_no INTEGER, field VARCHAR(50), column_name VARCHAR(100),"
        f" value TEXT, reason TEXT, warning TEXT){_temporary(conn)}"
    )


def drop_staging(conn: Connection) -> None:
    for table in (STAGE, STAGE_SEG, STAGE_MATCH, STAGE_CELL, RESOLVED, SEG_RESOLVED):
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")


def create_as(conn: Connection, table: str, select_sql: str, params: dict | None = None) -> None:
    """Bulk results go into new tables (CREATE TABLE AS): cheaper than rewriting staged rows."""
    conn.execute(text(f"CREATE TEMPORARY TABLE {table}{_temporary(conn)} AS {select_sql}"), params or {})


def store_issues(conn: Connection, run_id: int, issues: Iterable[Issue]) -> int:
    rows = [(run_id, i.line_no, i.column, i.value, i.severity, i.reason) for i in issues]
    bulk_insert(conn, "segmail_import_issues", ISSUE_FIELDS, rows)
    return len(rows)


def _rows_read(chunk: RawChunk) -> int:
    return len(chunk.line_numbers) + len(chunk.malformed)


def validated_chunks(
    path: Path, layout: CsvLayout, *, size: int, workers: int
) -> Iterator[tuple[int, ValidatedChunk]]:
    """(rows read, validated chunk) in file order; a file of one chunk is validated in-process."""
    chunks = iter_chunks(path, layout, size=size)
    head = list(itertools.islice(chunks, 2))
    if len(head) < 2 or workers <= 1:
        for chunk in itertools.chain(head, chunks):
            yield _rows_read(chunk), validate_chunk(chunk)
        return
    yield from _validate_in_workers(itertools.chain(head, chunks), workers=workers)


def _validate_in_workers(chunks: Iterable[RawChunk], *, workers: int) -> Iterator[tuple[int, ValidatedChunk]]:
    """At most 2 chunks per worker are in flight. Forked children never touch the parent's
    connections and leave through os._exit, so those stay intact."""
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        pending: deque[tuple[int, Future]] = deque()
        for chunk in chunks:
            pending.append((_rows_read(chunk), pool.submit(validate_chunk, chunk)))
            if len(pending) >= 2 * workers:
                rows, future = pending.popleft()
                yield rows, future.result()
        while pending:
            rows, future = pending.popleft()
            yield rows, future.result()


@dataclass
class Staged:
    rows: int = 0  # records read, malformed ones included
    rejected: int = 0
    warnings: int = 0


def stage_file(conn: Connection, *, path: Path, layout: CsvLayout, run_id: int, chunk_size: int) -> Staged:
    """Load the valid records and their segments; store every issue found on the way."""
    staged = Staged()
    if layout.ignored:
        staged.warnings += store_issues(
            conn,
            run_id,
            [
                Issue(1, column, None, IssueSeverity.WARNING, "unknown column ignored")
                for column in layout.ignored
            ],
        )
    workers = settings.current().import_workers
    for rows, checked in validated_chunks(path, layout, size=chunk_size, workers=workers):
        staged.rows += rows
        staged.rejected += checked.rejected_rows
        bulk_insert(conn, STAGE, RECORD_FIELDS, checked.records)
        bulk_insert(conn, STAGE_SEG, SEG_FIELDS, checked.segments)
        bulk_insert(conn, STAGE_CELL, CellIssue._fields, checked.cells)
        staged.warnings += sum(1 for i in checked.issues if i.severity == IssueSeverity.WARNING)
        store_issues(conn, run_id, checked.issues)
    conn.exec_driver_sql(f"CREATE INDEX ix_stage_cell_line ON {STAGE_CELL} (line_no)")
    if is_postgres(conn.engine):
        for table in (STAGE, STAGE_SEG, STAGE_CELL):
            conn.exec_driver_sql(f"ANALYZE {table}")
    return staged
