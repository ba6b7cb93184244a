"""Import phase 1, the worker side: a batch of records becomes rows for the staging tables.

Each batch is read as CSV and shaped (csvfile.to_chunk), validated (rows.validate_chunk) and
rendered in a forked worker process, so the importing process only cuts the file's text into
blocks of whole records (imports.textblocks) and passes rows on: as COPY text on PostgreSQL, as
tuples for executemany on SQLite. Segment names are resolved here too, against the
segments the import locked before staging (resolve.lock_segments), and each record's keys are
hashed to the spots from which the few rows that may be in-file duplicates are found (imports.keys).
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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from segmail.imports.csvfile import CsvLayout, RecordBatch, iter_batches, to_chunk
from segmail.imports.keys import key_spots, present
from segmail.imports.rows import Issue, ValidatedChunk, validate_chunk

_NULL = "\\N"
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


@dataclass
class StagedChunk:
    """The rows of one batch for each staging table (COPY text, or tuples or columns for
    SQLite), its issues, and the spots of its records' keys (imports.keys)."""

    rows: int  # records read, malformed ones included
    rejected: int
    issues: list[Issue]
    records: str | list[list]  # segmail_stage: COPY text, or column by column (empty values "")
    segments: str | list[tuple]  # (line_no, segment_id) of segments that exist
    unknown_segments: str | list[tuple]  # (line_no, name) of names that are no segment
    cells: str | list[tuple]  # rows.CellIssue
    spots: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # keys.present


@dataclass(frozen=True)
class Target:
    """What workers need to know about where the rows go."""

    pg: bool
    segments: dict[str, int]  # name_key -> id of every segment, read under the import's lock


def _needs_escapes(values: Iterable[str]) -> bool:
    """Whether any value holds a character that COPY's text format escapes."""
    probe = "".join(values)
    return "\\" in probe or "\t" in probe or "\n" in probe or "\r" in probe


def _copy_lines(columns: Iterable[list[str]]) -> str:
    """Columns of rendered values as COPY's lines."""
    text = "\n".join(map("\t".join, zip(*columns, strict=True)))
    return f"{text}\n" if text else ""


def _copy_column(values: list) -> list[str]:
    """One column in COPY's text format: None as \\N, escapes only where a value needs them."""
    if not isinstance(next((value for value in values if value is not None), ""), str):
        return [_NULL if value is None else str(value) for value in values]  # numbers
    if _needs_escapes(filter(None, values)):
        return [_NULL if value is None else value.translate(_COPY_ESCAPES) for value in values]
    return [_NULL if value is None else value for value in values]


def copy_text(columns: Iterable[list]) -> str:
    """Rows given column by column, as the text COPY FROM STDIN reads."""
    return _copy_lines(map(_copy_column, columns))


def _copy_stage_column(values: list) -> list[str]:
    """One column of the stage table in COPY's text format with NULL '' (an empty value is NULL,
    so the many empty cells need no conversion): numbers as text, escapes where needed."""
    if not values or not isinstance(values[0], str):
        return ["" if value is None else str(value) for value in values]  # numbers, spots
    if _needs_escapes(values):
        return [value.translate(_COPY_ESCAPES) for value in values]
    return values


def _stage_rows(columns: list[list], *, pg: bool) -> str | list[list]:
    """The stage table's rows: COPY text with NULL '' (staging.STAGE_NULL), or on SQLite the
    columns as they are (lists travel between processes faster than rows; staging.load_records)."""
    return _copy_lines(map(_copy_stage_column, columns)) if pg else columns


def _by_row(rows: list[tuple], width: int, *, pg: bool) -> str | list[tuple]:
    """Rows given as tuples: COPY text on PostgreSQL, as they are on SQLite."""
    if not pg:
        return rows
    return copy_text([list(column) for column in zip(*rows, strict=True)] or [[]] * width)


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


def _segment_rows(checked: ValidatedChunk, segments: dict[str, int]) -> tuple[list[tuple], list[tuple]]:
    known = [(line, segments[key]) for line, key, _ in checked.segments if key in segments]
    unknown = [(line, name) for line, key, name in checked.segments if key not in segments]
    return known, unknown


def stage_chunk(batch: RecordBatch, *, layout: CsvLayout, target: Target) -> StagedChunk:
    """Shape, validate and render one batch of records (in a worker process)."""
    with without_cycle_collection():
        chunk = to_chunk(batch, layout)
        checked = validate_chunk(chunk)
        known, unknown = _segment_rows(checked, target.segments)
        spots = key_spots(checked.columns)
        return StagedChunk(
            rows=len(chunk.line_numbers) + len(chunk.malformed),
            rejected=checked.rejected_rows,
            issues=checked.issues,
            records=_stage_rows([*checked.columns.values(), *spots], pg=target.pg),
            segments=_by_row(known, 2, pg=target.pg),
            unknown_segments=_by_row(unknown, 2, pg=target.pg),
            cells=_by_row(checked.cells, 6, pg=target.pg),
            spots=present(spots),
        )


def staged_chunks(
    path: Path, layout: CsvLayout, *, size: int, workers: int, target: Target
) -> Iterator[StagedChunk]:
    """Staged chunks in file order; a file of one batch is validated in-process."""
    batches = iter_batches(path, layout, size=size)
    head = list(itertools.islice(batches, 2))
    stage = functools.partial(stage_chunk, layout=layout, target=target)
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
