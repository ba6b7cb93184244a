"""Import phases 2-4, all set-based SQL on the staging tables: matching stored contacts (and
conflicts), what a new contact needs, unknown salespeople and segments, the memberships each row
changes, and one resolved row per staged row that lands, saying which contact it becomes. In-file
duplicates are found in between (imports.duplicates).

Matching follows GUIDE §2: an external ID matches the contact with that ID; an e-mail
(case-insensitive) or country + mobile matches a contact unless both carry different external
IDs. A row whose keys point at two different contacts is a conflict and is rejected, never merged.

Required fields hold for the contact after the row is applied: a row that matches a stored contact
may leave any field empty, and an invalid cell of it is only a warning (the stored value stays,
e-mail included). A row that matches nothing creates a contact and is rejected, row by row with the
column, unless it has a country code, first and last name and an e-mail or a mobile
(`NEW_CONTACT_NEEDS`), invalid cells counting as missing. Rows are checked before in-file
duplicates are looked for, so an earlier row only yields to a later row that lands.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

from segmail.imports.columns import BY_KEY, DISPLAY_NAMES, NEW_CONTACT_NEEDS
from segmail.imports.rows import Issue
from segmail.imports.staging import (
    ISSUE_FIELDS,
    MATCHED,
    RESOLVED,
    SEG_ADDS,
    SEG_REMOVES,
    STAGE,
    STAGE_CELL,
    STAGE_SEG,
    STAGE_UNKNOWN_SEG,
    create_as,
    index_on_sqlite,
    store_issues,
)
from segmail.store.db import is_postgres
from segmail.store.models import IssueSeverity

# Every stored contact a row's keys match. The external ID finds at most one (external IDs are
# unique). A row with an external ID is matched by e-mail or phone only to contacts without one: a
# compatible contact with an external ID has the row's own, so it is the one the external ID finds.
# Those joins stay small that way.
_BY_EXTERNAL_ID = ("c.external_id = s.external_id", "1 = 1")
_BY_ADDRESS = (
    ("c.email_key = s.email_key", "s.external_id IS NULL"),
    ("c.email_key = s.email_key", "s.external_id IS NOT NULL AND c.external_id IS NULL"),
    ("c.country_code = s.country_code AND c.mobile_e164 = s.mobile_e164", "s.external_id IS NULL"),
    (
        "c.country_code = s.country_code AND c.mobile_e164 = s.mobile_e164",
        "s.external_id IS NOT NULL AND c.external_id IS NULL",
    ),
)


def _matches(joins: tuple[tuple[str, str], ...], where: str = "1 = 1") -> str:
    """SQL: (line_no, contact_id) for every stored contact the joins find for a row in `where`."""
    return " UNION ALL ".join(
        f"SELECT s.line_no, c.id AS contact_id FROM {STAGE} s JOIN segmail_contacts c ON {on}"
        f" WHERE s.state = 'ok' AND {keys} AND {where}"
        for on, keys in joins
    )


# Per row: the lowest and highest contact found, without grouping the (one per row) external-ID
# matches; e (external ID) or a (addresses) may be missing; whether an address found one (only
# then can two rows match one contact or a row two contacts: duplicates.same_contact_duplicates).
# (CAST: SQLite indexes a computed column of a new table for joins with integers only when it is
# declared one.)
_MATCHED = (
    f"SELECT CAST(COALESCE(e.line_no, a.line_no) AS INTEGER) AS line_no,"
    f" CAST(COALESCE(CASE WHEN e.contact_id < a.lowest THEN e.contact_id ELSE a.lowest END, e.contact_id)"
    f"  AS INTEGER) AS contact_id,"
    f" CAST(COALESCE(CASE WHEN e.contact_id > a.highest THEN e.contact_id ELSE a.highest END, e.contact_id)"
    f"  AS INTEGER) AS other,"
    f" CASE WHEN a.line_no IS NULL THEN 0 ELSE 1 END AS by_address"
    f" FROM ({_matches((_BY_EXTERNAL_ID,))}) e FULL JOIN (SELECT line_no, MIN(contact_id) AS lowest,"
    f"  MAX(contact_id) AS highest FROM ({_matches(_BY_ADDRESS)}) AS x GROUP BY line_no) a"
    f" ON a.line_no = e.line_no"
)


def match_contacts(conn: Connection, run_id: int) -> int:
    """MATCHED: per row that matches stored contacts, the lowest and highest of them; reject the
    rows that match two. Returns how many were rejected."""
    create_as(conn, MATCHED, _MATCHED)
    index_on_sqlite(conn, MATCHED, "line_no", unique=True)
    conflicts = _conflicts(conn)
    if conflicts:
        conn.execute(
            text(f"UPDATE {STAGE} SET state = 'conflict' WHERE line_no = :line"),
            [{"line": line} for line in conflicts],
        )
        issues = [
            Issue(
                line,
                None,
                None,
                IssueSeverity.ERROR,
                f"conflict: the row's keys match {len(labels)} different contacts: {'; '.join(labels)};"
                " not merged",
            )
            for line, labels in conflicts.items()
        ]
        store_issues(conn, run_id, issues)
    return len(conflicts)


def _conflicts(conn: Connection) -> dict[int, list[str]]:
    """line -> the contacts it matches, as '#id (external ID x, e-mail, mobile)', when more than one."""
    conflicting = f"s.line_no IN (SELECT line_no FROM {MATCHED} WHERE contact_id <> other)"
    if not conn.execute(
        text(f"SELECT EXISTS (SELECT 1 FROM {MATCHED} WHERE contact_id <> other)")
    ).scalar_one():
        return {}
    matches = _matches((_BY_EXTERNAL_ID, *_BY_ADDRESS), conflicting)
    rows = conn.execute(
        text(
            f"SELECT DISTINCT m.line_no, c.id, c.external_id, c.email, c.mobile_e164 FROM ({matches}) m"
            f" JOIN segmail_contacts c ON c.id = m.contact_id ORDER BY m.line_no, c.id"
        )
    ).all()
    by_line: dict[int, list[str]] = {}
    for line, cid, ext, email, mobile in rows:
        label = f"#{cid} (" + ", ".join(v for v in (ext and f"external ID {ext}", email, mobile) if v) + ")"
        by_line.setdefault(line, []).append(label)
    return by_line


def _missing(group: tuple[str, ...], alias: str = "s") -> str:
    """SQL: the staged row has no value for any field of the group."""
    return " AND ".join(f"{alias}.{BY_KEY[name].staged[0]} IS NULL" for name in group)


def _fields(group: tuple[str, ...]) -> str:
    return ", ".join(f"'{name}'" for name in group)


# Per group of NEW_CONTACT_NEEDS: (its fields, SQL true when the staged row has none, the message).
_NEEDS = [
    (group, _missing(group), "a new contact needs " + " or ".join(DISPLAY_NAMES[name] for name in group))
    for group in NEW_CONTACT_NEEDS
]
# The incomplete rows, read once by the statements that report them.
_INCOMPLETE = f"WITH inc AS (SELECT * FROM {STAGE} WHERE state = 'incomplete')"
# An ignored cell is part of its row's rejection when its group is what the new contact misses.
_CAUSE = " OR ".join(f"(d.field IN ({_fields(group)}) AND {missing})" for group, missing, _ in _NEEDS)


def reject_incomplete_new_contacts(conn: Connection, run_id: int) -> tuple[int, int]:
    """Reject the rows that match no stored contact and lack what a new contact needs; the ignored
    cells of the other rows become warnings. Returns (rows rejected, warnings)."""
    any_missing = " OR ".join(f"({_missing(group, STAGE)})" for group in NEW_CONTACT_NEEDS)
    rejected = conn.execute(
        text(
            f"UPDATE {STAGE} SET state = 'incomplete' WHERE state = 'ok' AND ({any_missing})"
            f" AND NOT EXISTS (SELECT 1 FROM {MATCHED} m WHERE m.line_no = {STAGE}.line_no)"
        )
    ).rowcount
    if rejected:
        _report_incomplete(conn, run_id)
    warnings = conn.execute(
        text(
            f"INSERT INTO segmail_import_issues ({', '.join(ISSUE_FIELDS)}) {_INCOMPLETE}"
            f" SELECT :run, d.line_no, d.column_name, d.value, :warning, d.warning"
            f" FROM {STAGE_CELL} d LEFT JOIN inc s ON s.line_no = d.line_no"
            f" WHERE NOT (COALESCE(s.state, '') = 'incomplete' AND ({_CAUSE}))"
        ),
        {"run": run_id, "warning": IssueSeverity.WARNING},
    ).rowcount
    return rejected, warnings


def _report_incomplete(conn: Connection, run_id: int) -> None:
    """An error per missing group of an incomplete row: on each ignored cell of the group, saying
    why it was ignored, or, when the cells were empty, on the group's first column."""
    selects, params = [], {"run": run_id, "error": IssueSeverity.ERROR}
    for i, (group, missing, needs) in enumerate(_NEEDS):
        selects.append(
            f"SELECT :run, s.line_no, COALESCE(d.column_name, :column{i}), d.value, :error,"
            f" CAST(:needs{i} AS TEXT) || COALESCE(': ' || d.reason, '') FROM inc s"
            f" LEFT JOIN {STAGE_CELL} d ON d.line_no = s.line_no AND d.field IN ({_fields(group)})"
            f" WHERE {missing}"
        )
        params |= {f"column{i}": DISPLAY_NAMES[group[0]], f"needs{i}": needs}
    conn.execute(
        text(
            f"INSERT INTO segmail_import_issues ({', '.join(ISSUE_FIELDS)}) {_INCOMPLETE}"
            f" {' UNION ALL '.join(selects)}"
        ),
        params,
    )


def warn_unknown_salespeople(conn: Connection, run_id: int) -> int:
    """An unknown salesperson code only warns; the code is not stored, the rest of the row lands."""
    unknown = (
        f"state = 'ok' AND salesperson_code IS NOT NULL AND NOT EXISTS"
        f" (SELECT 1 FROM segmail_salespeople p WHERE p.code = {STAGE}.salesperson_code)"
    )
    rows = conn.execute(text(f"SELECT line_no, salesperson_code FROM {STAGE} WHERE {unknown}")).all()
    if rows:
        _warn(
            conn,
            run_id,
            rows,
            "salesperson",
            "unknown salesperson code {!r}; add it with `segmail salespeople add` — not stored",
        )
        conn.execute(text(f"UPDATE {STAGE} SET salesperson_code = NULL WHERE {unknown}"))
    return len(rows)


def lock_segments(conn: Connection) -> dict[str, int]:
    """name_key -> id of every segment, which cannot be deleted (or renamed) until this import
    commits (PostgreSQL; on SQLite one writer holds the database anyway). Read before staging, so
    memberships are inserted only for segments that exist until the commit; a delete that waited
    for the lock then removes the memberships the import added (contacts.segments.delete_segment
    deletes the segment first)."""
    lock = " FOR KEY SHARE" if is_postgres(conn.engine) else ""
    return dict(conn.execute(text(f"SELECT name_key, id FROM segmail_segments{lock}")).all())


def warn_unknown_segments(conn: Connection, run_id: int) -> int:
    """A name that is no segment only warns and is never created; the rest of the row lands."""
    rows = conn.execute(
        text(
            f"SELECT u.line_no, u.name FROM {STAGE_UNKNOWN_SEG} u JOIN {STAGE} s ON s.line_no = u.line_no"
            f" WHERE s.state = 'ok' ORDER BY u.line_no"
        )
    ).all()
    _warn(
        conn,
        run_id,
        rows,
        "segments",
        "segment {!r} does not exist and was not created; the rest of the row was imported",
    )
    return len(rows)


def _warn(conn: Connection, run_id: int, rows: list, column: str, reason: str) -> None:
    """A warning per (line, value) on the column; `reason` is formatted with the value."""
    issues = [
        Issue(line, DISPLAY_NAMES[column], value, IssueSeverity.WARNING, reason.format(value))
        for line, value in rows
    ]
    store_issues(conn, run_id, issues)


def _membership_changes(conn: Connection, mode: str | None) -> None:
    """SEG_ADDS and SEG_REMOVES, (line_no, contact_id, segment_id) per matching row: the memberships
    it adds (merge and replace) and removes (replace). Only rows that land (RESOLVED) apply them, so
    conflicting and duplicate rows change nothing."""
    adds = (
        f"SELECT m.line_no, m.contact_id, sr.segment_id FROM {MATCHED} m JOIN {STAGE_SEG} sr ON sr.line_no = m.line_no"
        f" WHERE NOT EXISTS (SELECT 1 FROM segmail_memberships mm"
        f"  WHERE mm.contact_id = m.contact_id AND mm.segment_id = sr.segment_id)"
    )
    removes = (
        f"SELECT m.line_no, m.contact_id, mm.segment_id FROM {MATCHED} m"
        f" JOIN segmail_memberships mm ON mm.contact_id = m.contact_id"
        f" WHERE NOT EXISTS (SELECT 1 FROM {STAGE_SEG} sr WHERE sr.line_no = m.line_no"
        f"  AND sr.segment_id = mm.segment_id)"
    )
    none = f"SELECT line_no, contact_id, contact_id AS segment_id FROM {MATCHED} WHERE 1 = 0"
    create_as(conn, SEG_ADDS, none if mode is None else adds)
    create_as(conn, SEG_REMOVES, removes if mode == "replace" else none)
    for table in (SEG_ADDS, SEG_REMOVES):
        index_on_sqlite(conn, table, "line_no")
    index_on_sqlite(conn, SEG_REMOVES, "contact_id", "segment_id")


def new_contact_id(alias: str) -> str:
    """SQL: the id a row that creates a contact gives it, the highest stored id (`:base`) + its line
    number, so statements that write new contacts need no join to learn it."""
    return f"CAST(:base + {alias}.line_no AS INTEGER)"


def resolve_rows(conn: Connection, *, mode: str | None) -> int:
    """RESOLVED(line_no, contact_id, is_new, seg_changed) for every row that lands. New contacts get
    the highest stored id + their line number (gaps are harmless). Whether a matching row changes
    its contact's fields is decided where it is written (apply.update_contacts).
    `mode` None: the file has no Segments column. Returns the highest stored id."""
    base = conn.execute(text("SELECT COALESCE(MAX(id), 0) FROM segmail_contacts")).scalar_one()
    _membership_changes(conn, mode)
    create_as(
        conn,
        RESOLVED,
        f"SELECT s.line_no, COALESCE(m.contact_id, {new_contact_id('s')}) AS contact_id,"
        f" CASE WHEN m.contact_id IS NULL THEN 1 ELSE 0 END AS is_new,"
        f" CASE WHEN s.line_no IN (SELECT line_no FROM {SEG_ADDS})"
        f"  OR s.line_no IN (SELECT line_no FROM {SEG_REMOVES}) THEN 1 ELSE 0 END AS seg_changed"
        f" FROM {STAGE} s LEFT JOIN {MATCHED} m ON m.line_no = s.line_no"
        f" WHERE s.state = 'ok'",
        {"base": base},
    )
    index_on_sqlite(conn, RESOLVED, "line_no", unique=True)
    index_on_sqlite(conn, RESOLVED, "contact_id")
    return base
