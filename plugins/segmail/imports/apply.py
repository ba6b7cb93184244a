"""Import phase 5: write the resolved rows to contacts and memberships, set-based. Only rows that
change something are written, so a re-import touches nothing.

Non-empty cells overwrite stored values, empty cells keep them; an import sets an e-mail opt-out
or an SMS opt-out but never clears one.

Memberships have no foreign keys (checking them row by row made them the slowest part of a large
import); these statements keep them to existing contacts and segments on their own. A membership
is inserted only for a segment id read from segmail_segments under the import's lock
(resolve.lock_segments, taken before staging) and for a contact that this transaction inserts or
updates: a row whose memberships change counts as changing its contact, so `update_contacts`
writes and row-locks that contact before its memberships are written. Memberships left behind by
contact ids that new contacts are about to take are removed first, so none can be inherited.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Connection, UniqueConstraint, text

from segmail.imports import bulkload
from segmail.imports.columns import OVERWRITTEN
from segmail.imports.resolve import new_contact_id
from segmail.imports.staging import MATCHED, RESOLVED, SEG_ADDS, SEG_REMOVES, STAGE, STAGE_SEG
from segmail.store.db import is_postgres
from segmail.store.models import Contact

_TARGET = "segmail_contacts"


def write_contacts(conn: Connection, *, now: datetime, run_id: int, source: str, highest_id: int) -> int:
    """Returns how many stored contacts were updated. `highest_id`: the highest stored id before
    this import (resolve.new_contact_id)."""
    params = {"now": now, "run": run_id, "source": source[:200], "base": highest_id}
    updated = update_contacts(conn, params)
    insert_contacts(conn, params)
    return updated


def _landing_rows(conn: Connection) -> tuple[int, int]:
    """(new, matched): how many landing rows create a contact and how many update one."""
    counts = dict(conn.execute(text(f"SELECT is_new, COUNT(*) FROM {RESOLVED} GROUP BY is_new")).all())
    return counts.get(1, 0), counts.get(0, 0)


def indexed_columns() -> tuple[str, ...]:
    """The overwritten columns that an index or a unique constraint of contacts holds."""
    table = Contact.__table__
    held = {column.name for index in table.indexes for column in index.columns}
    held |= {c.name for k in table.constraints if isinstance(k, UniqueConstraint) for c in k.columns}
    return tuple(name for name in OVERWRITTEN if name in held)


def update_contacts(conn: Connection, params: dict) -> int:
    """Non-empty cells overwrite; empty cells keep what is stored; an opt-out is never cleared. Only
    contacts whose fields or memberships the row changes are written. Returns how many.

    SQLite rewrites the index entries of every column a statement assigns, changed or not (four
    times the cost of a row that keeps its keys); PostgreSQL compares the values and updates the
    row in place. So on SQLite the indexed columns are assigned by a second statement, to the few
    rows whose keys change."""
    keys = () if is_postgres(conn.engine) else indexed_columns()
    assigned = [c for c in OVERWRITTEN if c not in keys]
    newly_opted_out = f"s.opt_out = 1 AND NOT {_TARGET}.email_opt_out"
    newly_sms_opted_out = f"s.sms_opt_out = 1 AND NOT {_TARGET}.sms_opt_out"
    updated = conn.execute(
        text(
            f"UPDATE {_TARGET} SET {_overwrites(assigned)},"
            f" email_opt_out_at = CASE WHEN {newly_opted_out} THEN :now ELSE {_TARGET}.email_opt_out_at END,"
            f" email_opt_out_source = CASE WHEN {newly_opted_out} THEN :source"
            f"   ELSE {_TARGET}.email_opt_out_source END,"
            f" email_opt_out = CASE WHEN s.opt_out = 1 THEN TRUE ELSE {_TARGET}.email_opt_out END,"
            f" sms_opt_out_at = CASE WHEN {newly_sms_opted_out} THEN :now ELSE {_TARGET}.sms_opt_out_at END,"
            f" sms_opt_out_source = CASE WHEN {newly_sms_opted_out} THEN :source"
            f"   ELSE {_TARGET}.sms_opt_out_source END,"
            f" sms_opt_out = CASE WHEN s.sms_opt_out = 1 THEN TRUE ELSE {_TARGET}.sms_opt_out END,"
            f" updated_at = :now, last_import_id = :run"
            f" FROM {STAGE} s JOIN {RESOLVED} r ON r.line_no = s.line_no"
            f" WHERE r.contact_id = {_TARGET}.id AND r.is_new = 0 AND (r.seg_changed = 1 OR {_differs(OVERWRITTEN)}"
            f" OR ({newly_opted_out}) OR ({newly_sms_opted_out}))"
        ),
        params,
    ).rowcount
    if keys:
        conn.execute(
            text(
                f"UPDATE {_TARGET} SET {_overwrites(keys)}"
                f" FROM {STAGE} s JOIN {RESOLVED} r ON r.line_no = s.line_no"
                f" WHERE r.contact_id = {_TARGET}.id AND r.is_new = 0 AND ({_differs(keys)})"
            )
        )
    return updated


def _overwrites(columns: Iterable[str]) -> str:
    """SQL SET: a non-empty staged cell overwrites, an empty one keeps the stored value."""
    return ", ".join(f"{c} = COALESCE(s.{c}, {_TARGET}.{c})" for c in columns)


def _differs(columns: Iterable[str]) -> str:
    """SQL: a non-empty staged cell of these columns differs from the stored value."""
    return " OR ".join(f"(s.{c} IS NOT NULL AND s.{c} IS DISTINCT FROM {_TARGET}.{c})" for c in columns)


def insert_contacts(conn: Connection, params: dict) -> None:
    """New contacts in id order; into an empty table as a bulk load (see bulkload).

    Their values are read from the stage alone, by whichever list of lines is shorter: the rows
    that match no stored contact (a first import matches none), or the new rows of RESOLVED (a
    re-import has few). Joining RESOLVED for their ids hashed the whole wide stage instead
    (1.4 s a million rows)."""
    new_rows, matched_rows = _landing_rows(conn)
    if not new_rows:
        return
    landing = (
        f"s.state = 'ok' AND NOT EXISTS (SELECT 1 FROM {MATCHED} m WHERE m.line_no = s.line_no)"
        if matched_rows < new_rows
        else f"s.line_no IN (SELECT line_no FROM {RESOLVED} WHERE is_new = 1)"
    )
    columns = ", ".join(OVERWRITTEN)
    staged = ", ".join(f"s.{c}" for c in OVERWRITTEN)
    with bulkload.indexes_built_after(conn, _TARGET, rows=new_rows) as bulk:
        conn.execute(
            text(
                f"INSERT INTO {_TARGET} (id, {columns}, email_opt_out, email_opt_out_at, email_opt_out_source,"
                f" sms_opt_out, sms_opt_out_at, sms_opt_out_source, created_at, updated_at, last_import_id)"
                f" SELECT {new_contact_id('s')}, {staged}, s.opt_out = 1, CASE WHEN s.opt_out = 1 THEN :now END,"
                f" CASE WHEN s.opt_out = 1 THEN :source END, s.sms_opt_out = 1,"
                f" CASE WHEN s.sms_opt_out = 1 THEN :now END, CASE WHEN s.sms_opt_out = 1 THEN :source END,"
                f" :now, :now, :run FROM {STAGE} s WHERE {landing}"
                + ("" if bulk else " ORDER BY s.line_no")  # the index build sorts anyway
            ),
            params,
        )


def apply_memberships(conn: Connection, mode: str, *, highest_id: int) -> None:
    """merge adds the listed segments; replace also removes the ones a changed row does not list.
    `highest_id`: the highest stored id before this import; new contacts take higher ones."""
    landing = f"JOIN {RESOLVED} r ON r.line_no = x.line_no"
    params = {"base": highest_id}
    conn.execute(text("DELETE FROM segmail_memberships WHERE contact_id > :base"), params)
    if mode == "replace":
        conn.exec_driver_sql(
            f"DELETE FROM segmail_memberships WHERE EXISTS (SELECT 1 FROM {SEG_REMOVES} x {landing}"
            f" WHERE x.contact_id = segmail_memberships.contact_id AND x.segment_id = segmail_memberships.segment_id)"
        )
    new = (
        f"SELECT {new_contact_id('x')}, x.segment_id FROM {STAGE_SEG} x"
        f" WHERE x.line_no IN (SELECT line_no FROM {RESOLVED} WHERE is_new = 1)"
    )
    added = f"SELECT x.contact_id, x.segment_id FROM {SEG_ADDS} x WHERE x.line_no IN (SELECT line_no FROM {RESOLVED})"
    # At most one membership per staged segment name, for new and matched rows alike: counting
    # those is enough to decide.
    named = conn.execute(text(f"SELECT COUNT(*) FROM {STAGE_SEG}")).scalar_one()
    with bulkload.indexes_built_after(conn, "segmail_memberships", rows=named) as bulk:
        order = "" if bulk else " ORDER BY 1, 2"  # the index build sorts anyway
        for select in (new, added):
            conn.execute(
                text(f"INSERT INTO segmail_memberships (contact_id, segment_id) {select}{order}"), params
            )
