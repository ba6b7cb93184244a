"""Contact export in CSV or JSON that imports back unchanged (cells are formula-safe)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from typing import TextIO

from sqlalchemy import Engine, text

from segmail.errors import SegmailError
from segmail.imports.columns import COLUMNS, DISPLAY_NAMES, EXPORT_FIELDS, SEGMENT_SEPARATOR
from segmail.spreadsheet import spreadsheet_safe
from segmail.store.db import default_engine, session_scope

# The fields read from segmail_contacts; segments come from the memberships.
_STORED = tuple(c for c in COLUMNS if c.contact)


def iter_contacts(*, segment: str | None = None, engine: Engine | None = None) -> Iterator[dict]:
    """Every contact (or a segment's) with its segments, streamed in id order. An unknown segment
    raises NotFound here, before anything is streamed (a caller has written nothing yet)."""
    engine = engine or default_engine()
    where, params = "", {}
    if segment is not None:
        from segmail.contacts.segments import get_segment

        with session_scope(engine) as session:
            params["segment_id"] = get_segment(session, segment).id
        where = " WHERE c.id IN (SELECT contact_id FROM segmail_memberships WHERE segment_id = :segment_id)"
    return _stream_contacts(engine, where, params)


def _stream_contacts(engine: Engine, where: str, params: dict) -> Iterator[dict]:
    columns = ", ".join(f"c.{c.contact}" for c in _STORED)
    query = text(f"SELECT c.id, {columns} FROM segmail_contacts c{where} ORDER BY c.id")
    seg_query = text(
        "SELECT m.contact_id, g.name FROM segmail_memberships m JOIN segmail_segments g ON g.id = m.segment_id"
        " WHERE m.contact_id BETWEEN :lo AND :hi ORDER BY m.contact_id, g.name_key"
    )
    names = [c.key for c in _STORED]
    with engine.connect() as conn:
        result = conn.execution_options(yield_per=5000).execute(query, params)
        for batch in result.partitions():
            segs: dict[int, list[str]] = {}
            for cid, name in conn.execute(seg_query, {"lo": batch[0][0], "hi": batch[-1][0]}):
                segs.setdefault(cid, []).append(name)
            for row in batch:
                record = dict(zip(names, row[1:], strict=True))
                record["email_opt_out"] = bool(record["email_opt_out"])
                record["sms_opt_out"] = bool(record["sms_opt_out"])
                record["segments"] = segs.get(row[0], [])
                yield record


def export_contacts(
    out: TextIO, *, fmt: str = "csv", segment: str | None = None, engine: Engine | None = None
) -> int:
    count = 0
    if fmt not in ("csv", "json"):
        raise SegmailError(f"unknown export format {fmt!r}; use csv or json")
    contacts = iter_contacts(segment=segment, engine=engine)
    if fmt == "json":
        out.write("[")
        for count, record in enumerate(contacts, start=1):
            out.write(("\n" if count == 1 else ",\n") + json.dumps(record, ensure_ascii=False))
        out.write("\n]\n")
        return count
    writer = csv.writer(out)
    writer.writerow([DISPLAY_NAMES[f] for f in EXPORT_FIELDS])
    for record in contacts:
        record["segments"] = f"{SEGMENT_SEPARATOR} ".join(record["segments"])
        record["email_opt_out"] = "yes" if record["email_opt_out"] else ""
        record["sms_opt_out"] = "yes" if record["sms_opt_out"] else ""
        writer.writerow([spreadsheet_safe(record[f]) for f in EXPORT_FIELDS])
        count += 1
    return count
