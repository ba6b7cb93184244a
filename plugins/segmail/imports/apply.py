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

from datetime import datetime

from sqlalchemy import Connection, text

from segmail.imports import bulkload
from segmail.imports.columns import OVERWRITTEN
from segmail.imports.staging import RESOLVED, SEG_ADDS, SEG_REMOVES, STAGE, STAGE_SEG

_TARGET = "segmail_contacts"


def write_contacts(conn: Connection, *, now: datetime, run_id: int, source: str) -> int:
    """Returns how many stored contacts were updated."""
    params = {"now": now, "run": run_id, "source": source[:200]}
    updated = update_contacts(conn, params)
    insert_contacts(conn, params)
    return updated


def _count(conn: Connection, where: str) -> int:
    return conn.execute(text(f"SELECT COUNT(*) FROM {RESOLVED} WHERE {where}")).scalar_one()


def update_contacts(conn: Connection, params: dict) -> int:
    """Non-empty cells overwrite; empty cells keep what is stored; an opt-out is never cleared. Only
    contacts whose fields or memberships the row changes are written. Returns how many."""
    sets = ", ".join(f"{c} = COALESCE(s.{c}, {_TARGET}.{c})" for c in OVERWRITTEN)
    differs = " OR ".join(
        f"(s.{c} IS NOT NULL AND s.{c} IS DISTINCT FROM {_TARGET}.{c})" for c in OVERWRITTEN
    )
    newly_opted_out = f"s.opt_out = 1 AND NOT {_TARGET}.email_opt_out"
    newly_sms_opted_out = f"s.sms_opt_out = 1 AND NOT {_TARGET}.sms_opt_out"
    return conn.execute(
        text(
            f"UPDATE {_TARGET} SET {sets},"
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
            f" WHERE r.contact_id = {_TARGET}.id AND r.is_new = 0"
            f" AND (r.seg_changed = 1 OR {differs} OR ({newly_opted_out}) OR ({newly_sms_opted_out}))"
        ),
        params,
    ).rowcount


def insert_contacts(conn: Connection, params: dict) -> None:
    """New contacts in id order; into an empty table as a bulk load (see bulkload)."""
    columns = ", ".join(OVERWRITTEN)
    staged = ", ".join(f"s.{c}" for c in OVERWRITTEN)
    with bulkload.indexes_built_after(conn, _TARGET, rows=_count(conn, "is_new = 1")) as bulk:
        conn.execute(
            text(
                f"INSERT INTO {_TARGET} (id, {columns}, email_opt_out, email_opt_out_at, email_opt_out_source,"
                f" sms_opt_out, sms_opt_out_at, sms_opt_out_source, created_at, updated_at, last_import_id)"
                f" SELECT r.contact_id, {staged}, s.opt_out = 1, CASE WHEN s.opt_out = 1 THEN :now END,"
                f" CASE WHEN s.opt_out = 1 THEN :source END, s.sms_opt_out = 1,"
                f" CASE WHEN s.sms_opt_out = 1 THEN :now END, CASE WHEN s.sms_opt_out = 1 THEN :source END,"
                f" :now, :now, :run"
                f" FROM {STAGE} s JOIN {RESOLVED} r ON r.line_no = s.line_no WHERE r.is_new = 1"
                + ("" if bulk else " ORDER BY r.contact_id")  # the index build sorts anyway
            ),
            params,
        )


def apply_memberships(conn: Connection, mode: str, *, first_new_id: int) -> None:
    """merge adds the listed segments; replace also removes the ones a changed row does not list.
    `first_new_id`: the lowest id a new contact of this import may take."""
    landing = f"JOIN {RESOLVED} r ON r.line_no = x.line_no"
    conn.execute(text("DELETE FROM segmail_memberships WHERE contact_id >= :first"), {"first": first_new_id})
    if mode == "replace":
        conn.exec_driver_sql(
            f"DELETE FROM segmail_memberships WHERE EXISTS (SELECT 1 FROM {SEG_REMOVES} x {landing}"
            f" WHERE x.contact_id = segmail_memberships.contact_id AND x.segment_id = segmail_memberships.segment_id)"
        )
    new = f"SELECT r.contact_id, x.segment_id FROM {STAGE_SEG} x {landing} WHERE r.is_new = 1"
    added = f"SELECT x.contact_id, x.segment_id FROM {SEG_ADDS} x {landing}"
    # At most one membership per staged segment name, for new and matched rows alike: counting
    # those is enough to decide.
    named = conn.execute(text(f"SELECT COUNT(*) FROM {STAGE_SEG}")).scalar_one()
    with bulkload.indexes_built_after(conn, "segmail_memberships", rows=named) as bulk:
        order = "" if bulk else " ORDER BY 1, 2"  # the index build sorts anyway
        for select in (new, added):
            conn.exec_driver_sql(f"INSERT INTO segmail_memberships (contact_id, segment_id) {select}{order}")
