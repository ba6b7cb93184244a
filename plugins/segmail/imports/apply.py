"""Import phase 5: write the resolved rows to contacts and memberships, in two set-based statements
each. Only rows that change something are written, so a re-import touches nothing.

Non-empty cells overwrite stored values, empty cells keep them; an import sets an e-mail opt-out
but never clears one.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, text

from segmail.imports.columns import OVERWRITTEN
from segmail.imports.staging import RESOLVED, SEG_RESOLVED, STAGE

_TARGET = "segmail_contacts"


def write_contacts(conn: Connection, *, now: datetime, run_id: int, source: str) -> None:
    params = {"now": now, "run": run_id, "source": source[:200]}
    update_contacts(conn, params)
    insert_contacts(conn, params)


def update_contacts(conn: Connection, params: dict) -> None:
    """Non-empty cells overwrite; empty cells keep what is stored; an opt-out is never cleared."""
    sets = ", ".join(f"{c} = COALESCE(s.{c}, {_TARGET}.{c})" for c in OVERWRITTEN)
    newly_opted_out = f"s.opt_out = 1 AND NOT {_TARGET}.email_opt_out"
    conn.execute(
        text(
            f"UPDATE {_TARGET} SET {sets},"
            f" email_opt_out_at = CASE WHEN {newly_opted_out} THEN :now ELSE {_TARGET}.email_opt_out_at END,"
            f" email_opt_out_source = CASE WHEN {newly_opted_out} THEN :source"
            f"   ELSE {_TARGET}.email_opt_out_source END,"
            f" email_opt_out = CASE WHEN s.opt_out = 1 THEN TRUE ELSE {_TARGET}.email_opt_out END,"
            f" updated_at = :now, last_import_id = :run"
            f" FROM {STAGE} s JOIN {RESOLVED} r ON r.line_no = s.line_no"
            f" WHERE r.contact_id = {_TARGET}.id AND r.is_new = 0 AND (r.changed = 1 OR r.seg_changed = 1)"
        ),
        params,
    )


def insert_contacts(conn: Connection, params: dict) -> None:
    columns = ", ".join(OVERWRITTEN)
    staged = ", ".join(f"s.{c}" for c in OVERWRITTEN)
    conn.execute(
        text(
            f"INSERT INTO {_TARGET} (id, {columns}, email_opt_out, email_opt_out_at, email_opt_out_source,"
            f" created_at, updated_at, last_import_id)"
            f" SELECT r.contact_id, {staged}, s.opt_out = 1, CASE WHEN s.opt_out = 1 THEN :now END,"
            f" CASE WHEN s.opt_out = 1 THEN :source END, :now, :now, :run"
            f" FROM {STAGE} s JOIN {RESOLVED} r ON r.line_no = s.line_no WHERE r.is_new = 1"
        ),
        params,
    )


def apply_memberships(conn: Connection, mode: str) -> None:
    """merge adds the listed segments; replace also removes the ones a changed row does not list."""
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
