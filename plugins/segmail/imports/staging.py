"""Import phase 1: stream the file, validate it in chunks, load the good rows into staging tables.

Staging tables are made and dropped inside the import's transaction (unlogged tables on
PostgreSQL, temporary ones on SQLite), so a failed import leaves nothing behind. Chunks are read,
validated and rendered in forked worker processes (imports.chunks) while this process cuts the
file's text into blocks and loads the database; memory stays bounded whatever the file size.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sqlalchemy import Connection, text

from segmail import settings
from segmail.imports.chunks import StagedChunk, Target, staged_chunks, without_cycle_collection
from segmail.imports.columns import RECORD_FIELDS, STAGE_COLUMNS
from segmail.imports.csvfile import CsvLayout
from segmail.imports.keys import SPOT_COLUMNS, SeenSpots
from segmail.imports.rows import CellIssue, Issue
from segmail.store.db import bulk_insert, is_postgres
from segmail.store.models import IssueSeverity

STAGE = "segmail_stage"  # one row per valid record; `state` ok | duplicate | conflict | incomplete
STAGE_SEG = "segmail_stage_seg"  # (line, segment id) for each existing segment a record names
STAGE_UNKNOWN_SEG = "segmail_stage_unknown_seg"  # (line, name) for each name that is no segment
STAGE_CELL = "segmail_stage_cell"  # ignored cells of fields a new contact needs (rows.CellIssue)
SPOTS = "segmail_stage_spots"  # the key spots seen more than once (imports.keys)
CANDIDATES = "segmail_stage_candidates"  # the rows on them: those that may be in-file duplicates
MATCHED = "segmail_stage_matched"  # per matching row: the lowest and highest stored contact it matches
SEG_ADDS = "segmail_stage_seg_adds"  # (line, contact, segment): memberships matching rows add
SEG_REMOVES = "segmail_stage_seg_removes"  # (line, contact, segment): memberships replace removes
RESOLVED = "segmail_stage_resolved"  # the rows that land: contact id, new or not, memberships changed
TAKEN_OUT = "segmail_stage_taken_out"  # lines just marked as duplicates (see resolve.mark_duplicates)
SEG_FIELDS = ("line_no", "segment_id")
UNKNOWN_SEG_FIELDS = ("line_no", "name")
_TABLES = (
    STAGE,
    STAGE_SEG,
    STAGE_UNKNOWN_SEG,
    STAGE_CELL,
    SPOTS,
    CANDIDATES,
    MATCHED,
    SEG_ADDS,
    SEG_REMOVES,
    RESOLVED,
    TAKEN_OUT,
)
STAGE_NULL = ""  # the stage table's COPY text writes NULL as an empty value (chunks._stage_rows)
ISSUE_FIELDS = ("import_run_id", "line_no", "column_name", "value", "severity", "reason")


def new_table(conn: Connection, table: str) -> str:
    """CREATE ... TABLE: unlogged on PostgreSQL (no WAL, and unlike a temporary table parallel
    workers can scan it), temporary on SQLite or where the role may not create tables. Made and
    dropped inside the import's transaction."""
    return f"CREATE {'UNLOGGED' if _may_create(conn) else 'TEMPORARY'} TABLE {table}"


def _may_create(conn: Connection) -> bool:
    if not is_postgres(conn.engine):
        return False
    if "segmail_may_create" not in conn.info:
        privilege = text("SELECT has_schema_privilege(current_schema(), 'CREATE')")
        conn.info["segmail_may_create"] = bool(conn.execute(privilege).scalar_one())
    return conn.info["segmail_may_create"]


def create_staging(conn: Connection) -> None:
    drop_staging(conn)
    columns = ", ".join(f"{name} {sql_type}" for name, sql_type in STAGE_COLUMNS)
    columns += "".join(f", {spot} INTEGER" for spot in SPOT_COLUMNS)
    conn.exec_driver_sql(f"{new_table(conn, STAGE)} ({columns}, state VARCHAR(10) DEFAULT 'ok')")
    conn.exec_driver_sql(f"{new_table(conn, STAGE_SEG)} (line_no INTEGER, segment_id INTEGER)")
    # TEXT: a name too long for any segment is staged, found missing and warned about like any other.
    conn.exec_driver_sql(f"{new_table(conn, STAGE_UNKNOWN_SEG)} (line_no INTEGER, name TEXT)")
    conn.exec_driver_sql(
        f"{new_table(conn, STAGE_CELL)} (line_no INTEGER, field VARCHAR(50), column_name VARCHAR(100),"
        f" value TEXT, reason TEXT, warning TEXT)"
    )


def drop_staging(conn: Connection) -> None:
    for table in _TABLES:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")


def create_as(conn: Connection, table: str, select_sql: str, params: dict | None = None) -> None:
    """Bulk results go into new tables (CREATE TABLE AS): cheaper than rewriting staged rows. On
    PostgreSQL the new table is analysed, so the statements that join it plan for its real size."""
    conn.execute(text(f"{new_table(conn, table)} AS {select_sql}"), params or {})
    analyze_staged(conn, table)


def index_on_sqlite(conn: Connection, table: str, *columns: str, unique: bool = False) -> None:
    """SQLite joins through indexes (it has no hash join); PostgreSQL does without."""
    if not is_postgres(conn.engine):
        kind = "UNIQUE INDEX" if unique else "INDEX"
        conn.exec_driver_sql(
            f"CREATE {kind} ix_{table}_{'_'.join(columns)} ON {table} ({', '.join(columns)})"
        )


def analyze(conn: Connection, *tables: str, sample: str = "DEFAULT") -> None:
    """Statistics for the planner (PostgreSQL; autovacuum never sees tables of an open transaction).
    `sample`: the statistics target (300 sampled rows per unit)."""
    if is_postgres(conn.engine):
        conn.exec_driver_sql(f"SET LOCAL default_statistics_target = {sample}")
        for table in tables:
            conn.exec_driver_sql(f"ANALYZE {table}")
        conn.exec_driver_sql("SET LOCAL default_statistics_target = DEFAULT")


def analyze_staged(conn: Connection, *tables: str) -> None:
    """`analyze` of staging tables: the planner needs their sizes and rough distributions, which
    3,000 sampled rows give at a tenth of the default sample's cost (0.3 s for a million rows)."""
    analyze(conn, *tables, sample="10")


def load(
    conn: Connection, table: str, columns: tuple[str, ...], rows: str | list[tuple], *, null: str = "\\N"
) -> None:
    """COPY text on PostgreSQL, tuples on SQLite (see chunks.StagedChunk). `null`: how the COPY
    text writes NULL."""
    if not isinstance(rows, str):
        bulk_insert(conn, table, columns, rows)
    elif rows:
        cursor = conn.connection.dbapi_connection.cursor()
        options = "" if null == "\\N" else f" WITH (NULL '{null}')"
        with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN{options}") as copy:
            copy.write(rows)


def store_issues(conn: Connection, run_id: int, issues: Iterable[Issue]) -> int:
    rows = [(run_id, i.line_no, i.column, i.value, i.severity, i.reason) for i in issues]
    bulk_insert(conn, "segmail_import_issues", ISSUE_FIELDS, rows)
    return len(rows)


@dataclass
class Staged:
    rows: int = 0  # records read, malformed ones included
    rejected: int = 0
    warnings: int = 0
    # The key spots seen more than once (imports.keys): rows on them may be in-file duplicates.
    repeated_spots: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


def load_records(conn: Connection, records: str | list[list]) -> None:
    """The stage table's rows: COPY text with NULL '' on PostgreSQL; on SQLite the values column
    by column, an empty string stored as NULL (chunks._stage_rows)."""
    columns = (*RECORD_FIELDS, *SPOT_COLUMNS)
    if isinstance(records, str):
        load(conn, STAGE, columns, records, null=STAGE_NULL)
    elif records and records[0]:
        values = ", ".join("NULLIF(?, '')" for _ in columns)
        conn.exec_driver_sql(
            f"INSERT INTO {STAGE} ({', '.join(columns)}) VALUES ({values})", list(zip(*records, strict=True))
        )


def _load_chunk(conn: Connection, chunk: StagedChunk) -> None:
    load_records(conn, chunk.records)
    load(conn, STAGE_SEG, SEG_FIELDS, chunk.segments)
    load(conn, STAGE_UNKNOWN_SEG, UNKNOWN_SEG_FIELDS, chunk.unknown_segments)
    load(conn, STAGE_CELL, CellIssue._fields, chunk.cells)


def stage_file(
    conn: Connection, *, path: Path, layout: CsvLayout, run_id: int, chunk_size: int, segments: dict[str, int]
) -> Staged:
    """Load the valid records and their segments; store every issue found on the way. `segments`:
    name_key -> id of the segments that exist (locked by the caller)."""
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
    workers, target = settings.current().import_workers, Target(is_postgres(conn.engine), segments)
    seen = SeenSpots()
    with without_cycle_collection():
        for chunk in staged_chunks(path, layout, size=chunk_size, workers=workers, target=target):
            staged.rows += chunk.rows
            staged.rejected += chunk.rejected
            _load_chunk(conn, chunk)
            staged.warnings += sum(1 for i in chunk.issues if i.severity == IssueSeverity.WARNING)
            store_issues(conn, run_id, chunk.issues)
            seen.add(chunk.spots)
    staged.repeated_spots = seen.repeated()
    conn.exec_driver_sql(f"CREATE INDEX ix_stage_cell_line ON {STAGE_CELL} (line_no)")
    index_on_sqlite(conn, STAGE_SEG, "line_no", "segment_id")
    analyze_staged(conn, STAGE, STAGE_SEG, STAGE_UNKNOWN_SEG, STAGE_CELL)
    return staged
