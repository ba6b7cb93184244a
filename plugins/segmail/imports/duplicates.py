"""In-file duplicates (GUIDE §2): a contact that appears more than once in a file is imported from
its last row; the earlier rows are reported as duplicates.

Only rows whose key (external ID, e-mail, country + mobile) occurs more than once can be
duplicates. Every row of a repeated key lies on a key spot seen more than once while staging
(imports.keys); those few rows alone are grouped and sorted here. Rows rejected already (conflicts,
incomplete new contacts) take no part.
"""

from __future__ import annotations

import numpy as np
from sqlalchemy import Connection, text

from segmail.imports.columns import DISPLAY_NAMES
from segmail.imports.keys import SPOT_COLUMNS
from segmail.imports.rows import Issue
from segmail.imports.staging import (
    CANDIDATES,
    MATCHED,
    RESOLVED,
    SPOTS,
    STAGE,
    TAKEN_OUT,
    analyze_staged,
    create_as,
    new_table,
    store_issues,
)
from segmail.store.db import bulk_insert
from segmail.store.models import IssueSeverity

# (line, the later line imported instead, the column they share; None: the same stored contact)
Duplicate = tuple[int, int, str | None]


def _compatible(a: str, b: str) -> str:
    """Two rows sharing an e-mail or phone are the same contact unless both carry different
    external IDs: then they are two records that happen to share an address."""
    return f"({a}.external_id IS NULL OR {b}.external_id IS NULL OR {a}.external_id = {b}.external_id)"


# The candidate rows still in the import whose key occurs more than once among them.
_C = CANDIDATES
_REPEATED = (
    f"SELECT line_no FROM {_C} WHERE external_id IN (SELECT external_id FROM {_C}"
    f"  WHERE external_id IS NOT NULL GROUP BY external_id HAVING COUNT(*) > 1)"
    f" UNION SELECT line_no FROM {_C} WHERE email_key IN (SELECT email_key FROM {_C}"
    f"  WHERE email_key IS NOT NULL GROUP BY email_key HAVING COUNT(*) > 1)"
    f" UNION SELECT s.line_no FROM {_C} s JOIN (SELECT country_code, mobile_e164 FROM {_C}"
    f"  WHERE mobile_e164 IS NOT NULL GROUP BY country_code, mobile_e164 HAVING COUNT(*) > 1) p"
    f"  ON p.country_code = s.country_code AND p.mobile_e164 = s.mobile_e164"
)
# Per repeated row: the last line sharing its external ID, its e-mail, its phone (if compatible).
_LATER_LINES = (
    f"WITH c AS (SELECT * FROM {_C} WHERE line_no IN ({_REPEATED})),"
    f" w AS (SELECT line_no, external_id,"
    f"   CASE WHEN external_id IS NOT NULL THEN MAX(line_no) OVER (PARTITION BY external_id) END AS last_ext,"
    f"   CASE WHEN email_key IS NOT NULL THEN MAX(line_no) OVER (PARTITION BY email_key) END AS last_email,"
    f"   CASE WHEN mobile_e164 IS NOT NULL THEN MAX(line_no) OVER (PARTITION BY country_code, mobile_e164)"
    f"   END AS last_phone FROM c)"
    f" SELECT w.line_no, w.last_ext, CASE WHEN {_compatible('w', 'le')} THEN w.last_email END,"
    f"   CASE WHEN {_compatible('w', 'lp')} THEN w.last_phone END"
    f" FROM w LEFT JOIN {_C} le ON le.line_no = w.last_email LEFT JOIN {_C} lp ON lp.line_no = w.last_phone"
    f" WHERE w.last_ext > w.line_no OR w.last_email > w.line_no OR w.last_phone > w.line_no"
)
_KEY_COLUMNS = (DISPLAY_NAMES["external_id"], DISPLAY_NAMES["email"], DISPLAY_NAMES["mobile"])


def _numbers(conn: Connection, table: str, numbers: list[int]) -> None:
    """A new staging table (n) of these numbers."""
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
    conn.exec_driver_sql(f"{new_table(conn, table)} (n INTEGER PRIMARY KEY)")
    bulk_insert(conn, table, ("n",), [(number,) for number in numbers])
    analyze_staged(conn, table)


def _stage_candidates(conn: Connection, spots: np.ndarray) -> None:
    """CANDIDATES: the staged rows still in the import that have a key on one of the spots."""
    _numbers(conn, SPOTS, spots.tolist())
    on_spots = " OR ".join(f"s.{spot} IN (SELECT n FROM {SPOTS})" for spot in SPOT_COLUMNS)
    create_as(conn, CANDIDATES, f"SELECT s.* FROM {STAGE} s WHERE s.state = 'ok' AND ({on_spots})")


def in_file_duplicates(conn: Connection, repeated_spots: np.ndarray) -> list[Duplicate]:
    """Every row that a later row of the same file supersedes: a row yields to the last row that
    shares a key with it (on a tie, the external ID is named). `repeated_spots`: imports.keys."""
    if not len(repeated_spots):
        return []
    _stage_candidates(conn, repeated_spots)
    found: list[Duplicate] = []
    for line, *later_lines in conn.execute(text(_LATER_LINES)).all():
        named = [
            (later, column)
            for later, column in zip(later_lines, _KEY_COLUMNS, strict=True)
            if later and later > line
        ]
        if named:
            later, column = max(named, key=lambda c: c[0])
            found.append((line, later, column))
    return found


def same_contact_duplicates(conn: Connection) -> list[Duplicate]:
    """Rows with different keys that matched the same stored contact: the last one wins. Only rows
    matched by an address can be among them: two rows that the external ID alone matched to one
    contact share that ID, so the earlier one was an in-file duplicate already."""
    if not conn.execute(text(f"SELECT EXISTS (SELECT 1 FROM {MATCHED} WHERE by_address = 1)")).scalar_one():
        return []
    rows = conn.execute(
        text(
            f"SELECT r.line_no, x.last FROM {RESOLVED} r JOIN (SELECT contact_id, MAX(line_no) AS last"
            f"  FROM {RESOLVED} WHERE is_new = 0 GROUP BY contact_id HAVING COUNT(*) > 1) x"
            f" ON x.contact_id = r.contact_id WHERE r.is_new = 0 AND r.line_no < x.last"
        )
    ).all()
    return [(line, later, None) for line, later in rows]


def mark_duplicates(conn: Connection, run_id: int, found: list[Duplicate], *, resolved: bool = False) -> int:
    """Take the earlier rows out (of the resolved rows too, once they exist) and report them."""
    if not found:
        return 0
    _numbers(conn, TAKEN_OUT, [line for line, _, _ in found])
    taken_out = f"line_no IN (SELECT n FROM {TAKEN_OUT})"
    conn.exec_driver_sql(f"UPDATE {STAGE} SET state = 'duplicate' WHERE {taken_out}")
    if resolved:
        conn.exec_driver_sql(f"DELETE FROM {RESOLVED} WHERE {taken_out}")
    issues = [
        Issue(
            line,
            column,
            None,
            IssueSeverity.DUPLICATE,
            f"duplicate: row {later} has the same {column or 'existing contact'} and was imported instead",
        )
        for line, later, column in found
    ]
    store_issues(conn, run_id, issues)
    return len(found)
