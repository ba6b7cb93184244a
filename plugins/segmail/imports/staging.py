"""Import phase 1: stream the file, validate it in chunks, load the good rows into staging tables.

Staging tables are temporary and live inside the import's transaction (ON COMMIT DROP on
PostgreSQL, dropped at the end on SQLite), so a failed import leaves nothing behind. Chunks are
validated in forked worker processes while this process loads the database; memory stays bounded
whatever the file size.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import itertools
import multiprocessing
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, text

from segmail import settings
from segmail.imports.columns import RECORD_FIELDS, STAGE_COLUMNS
from segmail.imports.csvfile import CsvLayout, RecordBatch, iter_batches, to_chunk
from segmail.imports.rows import CellIssue, Issue, validate_chunk
from segmail.store.db import bulk_insert, is_postgres
from segmail.store.models import IssueSeverity

STAGE = "segmail_stage"  # one row per valid record; `state` ok | duplicate | conflict
STAGE_SEG = "segmail_stage_seg"  # the segments named by each record
STAGE_MATCH = "segmail_stage_match"  # (line, stored contact) for each key that matches
STAGE_CELL = "segmail_stage_cell"  # ignored cells of fields a new contact needs (rows.CellIssue)
RESOLVED = "segmail_stage_resolved"  # the rows that land: contact id and what they change
SEG_RESOLVED = "segmail_stage_seg_resolved"  # (line, segment id) for segments that exist
SEG_FIELDS = ("line_no", "name_key", "name")
_FIELDS = {STAGE: RECORD_FIELDS, STAGE_SEG: SEG_FIELDS, STAGE_CELL: CellIssue._fields}
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


def load(conn: Connection, table: str, columns: tuple[str, ...], rows: str | list[tuple]) -> None:
    """COPY text on PostgreSQL, tuples on SQLite (see `StagedChunk`)."""
    if not isinstance(rows, str):
        bulk_insert(conn, table, columns, rows)
    elif rows:
        cursor = conn.connection.dbapi_connection.cursor()
        with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            copy.write(rows)


def store_issues(conn: Connection, run_id: int, issues: Iterable[Issue]) -> int:
    rows = [(run_id, i.line_no, i.column, i.value, i.severity, i.reason) for i in issues]
    bulk_insert(conn, "segmail_import_issues", ISSUE_FIELDS, rows)
    return len(rows)


@dataclass
class StagedChunk:
    """A validated chunk ready for the staging tables: `tables` maps each to its rows, as COPY text
    on PostgreSQL (rendered in the worker, so the importing process only passes it on) or as
    tuples for executemany on SQLite."""

    rows: int  # records read, malformed ones included
    rejected: int
    issues: list[Issue]
    tables: dict[str, str | list[tuple]]


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_column(values: list) -> list[str]:
    """One column in COPY's text format: None as \\N, escapes only where a value needs them."""
    texts = ["\\N" if value is None else str(value) for value in values]
    probe = "".join(value for value in values if isinstance(value, str))
    if any(special in probe for special in "\\\t\n\r"):
        texts = [text if value is None else text.translate(_COPY_ESCAPES) for text, value in zip(texts, values)]
    return texts


def copy_text(columns: Iterable[list]) -> str:
    """Rows given column by column, as the text COPY FROM STDIN reads."""
    text = "\n".join(map("\t".join, zip(*map(_copy_column, columns), strict=True)))
    return f"{text}\n" if text else ""


def _table(columns: list[list], *, pg: bool) -> str | list[tuple]:
    return copy_text(columns) if pg else list(zip(*columns, strict=True))


@contextlib.contextmanager
def without_cycle_collection() -> Iterator[None]:
    """Allocation-heavy work (a cell is a string, a record a list) without the cyclic garbage
    collector, which would otherwise scan the many young objects again and again: reference
    counting frees them; the collector runs again afterwards."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def stage_chunk(batch: RecordBatch, *, layout: CsvLayout, pg: bool) -> StagedChunk:
    """Shape, validate and render one batch of records (in a worker process)."""
    with without_cycle_collection():
        return _stage_chunk(batch, layout=layout, pg=pg)


def _stage_chunk(batch: RecordBatch, *, layout: CsvLayout, pg: bool) -> StagedChunk:
    chunk = to_chunk(batch, layout)
    checked = validate_chunk(chunk)
    tables = {
        STAGE: _table(list(checked.columns.values()), pg=pg),
        STAGE_SEG: _table([list(c) for c in zip(*checked.segments, strict=True)] or [[]] * 3, pg=pg),
        STAGE_CELL: _table([list(c) for c in zip(*checked.cells, strict=True)] or [[]] * 6, pg=pg),
    }
    rows = len(chunk.line_numbers) + len(chunk.malformed)
    return StagedChunk(rows, checked.rejected_rows, checked.issues, tables)


def staged_chunks(
    path: Path, layout: CsvLayout, *, size: int, workers: int, pg: bool
) -> Iterator[StagedChunk]:
    """Staged chunks in file order; a file of one batch is validated in-process."""
    batches = iter_batches(path, layout, size=size)
    head = list(itertools.islice(batches, 2))
    stage = functools.partial(stage_chunk, layout=layout, pg=pg)
    if len(head) < 2 or workers <= 1:
        yield from map(stage, itertools.chain(head, batches))
        return
    yield from _stage_in_workers(stage, itertools.chain(head, batches), workers=workers)


def _stage_in_workers(
    stage: Callable[[RecordBatch], StagedChunk], batches: Iterable[RecordBatch], *, workers: int
) -> Iterator[StagedChunk]:
    """At most 2 batches per worker are in flight. Forked children never touch the parent's
    connections and leave through os._exit, so those stay intact."""
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        pending: deque[Future] = deque()
        for batch in batches:
            pending.append(pool.submit(stage, batch))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


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
    workers, pg = settings.current().import_workers, is_postgres(conn.engine)
    with without_cycle_collection():
        for chunk in staged_chunks(path, layout, size=chunk_size, workers=workers, pg=pg):
            staged.rows += chunk.rows
            staged.rejected += chunk.rejected
            for table, rows in chunk.tables.items():
                load(conn, table, _FIELDS[table], rows)
            staged.warnings += sum(1 for i in chunk.issues if i.severity == IssueSeverity.WARNING)
            store_issues(conn, run_id, chunk.issues)
    conn.exec_driver_sql(f"CREATE INDEX ix_stage_cell_line ON {STAGE_CELL} (line_no)")
    if is_postgres(conn.engine):
        for table in (STAGE, STAGE_SEG, STAGE_CELL):
            conn.exec_driver_sql(f"ANALYZE {table}")
    return staged
