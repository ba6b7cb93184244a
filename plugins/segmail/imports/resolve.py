"""Import phases 2-4, all set-based SQL on the staging tables: matching stored contacts (and
conflicts), what a new contact needs, in-file duplicates, unknown salespeople and segments, and one
resolved row per staged row that lands, saying which contact it becomes and whether it changes
anything.

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

from segmail.imports.columns import BY_KEY, DISPLAY_NAMES, NEW_CONTACT_NEEDS, OVERWRITTEN
from segmail.imports.rows import Issue
from segmail.imports.staging import (
    ISSUE_FIELDS,
    RESOLVED,
    SEG_RESOLVED,
    STAGE,
    STAGE_CELL,
    STAGE_MATCH,
    STAGE_SEG,
    create_as,
    store_issues,
)
from segmail.store.models import IssueSeverity

# (line, the later line imported instead, the column they share; None: the same stored contact)
Duplicate = tuple[int, int, str | None]


def _compatible(a: str, b: str) -> str:
    """Two rows (or a row and a contact) sharing an e-mail or phone are the same contact unless both
    carry different external IDs: then they are two records that happen to share an address."""
    return f"({a}.external_id IS NULL OR {b}.external_id IS NULL OR {a}.external_id = {b}.external_id)"


# Only rows whose key occurs more than once can be duplicates: find them with cheap hash
# aggregates, then sort just those (all members of a repeated key are among them). Rows rejected
# already (conflicts, incomplete new contacts) take no part.
_OK = "state = 'ok'"
_REPEATED = (
    f"SELECT line_no FROM {STAGE} WHERE {_OK} AND external_id IN (SELECT external_id FROM {STAGE}"
    f"  WHERE {_OK} AND external_id IS NOT NULL GROUP BY external_id HAVING COUNT(*) > 1)"
    f" UNION SELECT line_no FROM {STAGE} WHERE {_OK} AND email_key IN (SELECT email_key FROM {STAGE}"
    f"  WHERE {_OK} AND email_key IS NOT NULL GROUP BY email_key HAVING COUNT(*) > 1)"
    f" UNION SELECT s.line_no FROM {STAGE} s JOIN (SELECT country_code, mobile_e164 FROM {STAGE}"
    f"  WHERE {_OK} AND mobile_e164 IS NOT NULL GROUP BY country_code, mobile_e164 HAVING COUNT(*) > 1) p"
    f"  ON p.country_code = s.country_code AND p.mobile_e164 = s.mobile_e164 WHERE s.{_OK}"
)
# Per repeated row: the last line sharing its external ID, its e-mail, its phone (if compatible).
_LATER_LINES = (
    f"WITH c AS (SELECT * FROM {STAGE} WHERE line_no IN ({_REPEATED})),"
    f" w AS (SELECT line_no, external_id,"
    f"   CASE WHEN external_id IS NOT NULL THEN MAX(line_no) OVER (PARTITION BY external_id) END AS last_ext,"
    f"   CASE WHEN email_key IS NOT NULL THEN MAX(line_no) OVER (PARTITION BY email_key) END AS last_email,"
    f"   CASE WHEN mobile_e164 IS NOT NULL THEN MAX(line_no) OVER (PARTITION BY country_code, mobile_e164)"
    f"   END AS last_phone FROM c)"
    f" SELECT w.line_no, w.last_ext, CASE WHEN {_compatible('w', 'le')} THEN w.last_email END,"
    f"   CASE WHEN {_compatible('w', 'lp')} THEN w.last_phone END"
    f" FROM w LEFT JOIN {STAGE} le ON le.line_no = w.last_email LEFT JOIN {STAGE} lp ON lp.line_no = w.last_phone"
    f" WHERE w.last_ext > w.line_no OR w.last_email > w.line_no OR w.last_phone > w.line_no"
)
_KEY_COLUMNS = (DISPLAY_NAMES["external_id"], DISPLAY_NAMES["email"], DISPLAY_NAMES["mobile"])


def in_file_duplicates(conn: Connection) -> list[Duplicate]:
    """Every row that a later row of the same file supersedes: a row yields to the last row that
    shares a key with it (on a tie, the external ID is named)."""
    found: list[Duplicate] = []
    for line, *later_lines in conn.execute(text(_LATER_LINES)).all():
        candidates = [
            (later, column)
            for later, column in zip(later_lines, _KEY_COLUMNS, strict=True)
            if later and later > line
        ]
        if candidates:
            later, column = max(candidates, key=lambda c: c[0])
            found.append((line, later, column))
    return found


def same_contact_duplicates(conn: Connection) -> list[Duplicate]:
    """Rows with different keys that matched the same stored contact: the last one wins."""
    rows = conn.execute(
        text(
            f"SELECT line_no, last FROM (SELECT line_no, MAX(line_no) OVER (PARTITION BY contact_id) AS last"
            f" FROM {RESOLVED} WHERE is_new = 0) AS w WHERE last > line_no"
        )
    ).all()
    return [(line, later, None) for line, later in rows]


def mark_duplicates(conn: Connection, run_id: int, found: list[Duplicate], *, resolved: bool = False) -> int:
    """Take the earlier rows out (of the resolved rows too, once they exist) and report them."""
    if not found:
        return 0
    lines = [{"line": line} for line, _, _ in found]
    conn.execute(text(f"UPDATE {STAGE} SET state = 'duplicate' WHERE line_no = :line"), lines)
    if resolved:
        conn.execute(text(f"DELETE FROM {RESOLVED} WHERE line_no = :line"), lines)
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


def match_contacts(conn: Connection, run_id: int) -> int:
    """Record every stored contact each row's keys match; reject the rows that match two. Returns
    how many were rejected."""
    conn.execute(
        text(
            f"INSERT INTO {STAGE_MATCH} (line_no, contact_id)"
            f" SELECT s.line_no, c.id FROM {STAGE} s JOIN segmail_contacts c ON c.external_id = s.external_id"
            f"  WHERE s.state = 'ok'"
            f" UNION ALL SELECT s.line_no, c.id FROM {STAGE} s JOIN segmail_contacts c ON c.email_key = s.email_key"
            f"  WHERE s.state = 'ok' AND {_compatible('s', 'c')}"
            f" UNION ALL SELECT s.line_no, c.id FROM {STAGE} s JOIN segmail_contacts c"
            f"  ON c.country_code = s.country_code AND c.mobile_e164 = s.mobile_e164"
            f"  WHERE s.state = 'ok' AND {_compatible('s', 'c')}"
        )
    )
    conn.exec_driver_sql(f"CREATE INDEX ix_stage_match_line ON {STAGE_MATCH} (line_no, contact_id)")
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
    rows = conn.execute(
        text(
            f"SELECT DISTINCT m.line_no, c.id, c.external_id, c.email, c.mobile_e164 FROM {STAGE_MATCH} m"
            f" JOIN segmail_contacts c ON c.id = m.contact_id"
            f" WHERE m.line_no IN (SELECT line_no FROM {STAGE_MATCH} GROUP BY line_no"
            f"  HAVING COUNT(DISTINCT contact_id) > 1)"
            f" ORDER BY m.line_no, c.id"
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
# An ignored cell is part of its row's rejection when its group is what the new contact misses.
_CAUSE = " OR ".join(f"(d.field IN ({_fields(group)}) AND {missing})" for group, missing, _ in _NEEDS)


def reject_incomplete_new_contacts(conn: Connection, run_id: int) -> tuple[int, int]:
    """Reject the rows that match no stored contact and lack what a new contact needs; the ignored
    cells of the other rows become warnings. Returns (rows rejected, warnings)."""
    any_missing = " OR ".join(f"({_missing(group, STAGE)})" for group in NEW_CONTACT_NEEDS)
    rejected = conn.execute(
        text(
            f"UPDATE {STAGE} SET state = 'incomplete' WHERE state = 'ok' AND ({any_missing})"
            f" AND NOT EXISTS (SELECT 1 FROM {STAGE_MATCH} m WHERE m.line_no = {STAGE}.line_no)"
        )
    ).rowcount
    if rejected:
        _report_incomplete(conn, run_id)
    warnings = conn.execute(
        text(
            f"INSERT INTO segmail_import_issues ({', '.join(ISSUE_FIELDS)})"
            f" SELECT :run, d.line_no, d.column_name, d.value, :warning, d.warning"
            f" FROM {STAGE_CELL} d LEFT JOIN {STAGE} s ON s.line_no = d.line_no"
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
            f" CAST(:needs{i} AS TEXT) || COALESCE(': ' || d.reason, '') FROM {STAGE} s"
            f" LEFT JOIN {STAGE_CELL} d ON d.line_no = s.line_no AND d.field IN ({_fields(group)})"
            f" WHERE s.state = 'incomplete' AND {missing}"
        )
        params |= {f"column{i}": DISPLAY_NAMES[group[0]], f"needs{i}": needs}
    conn.execute(
        text(f"INSERT INTO segmail_import_issues ({', '.join(ISSUE_FIELDS)}) {' UNION ALL '.join(selects)}"),
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


def resolve_segments(conn: Connection, run_id: int, *, has_segments: bool) -> int:
    """SEG_RESOLVED(line_no, segment_id) for the named segments that exist; a name that does not
    exist only warns and is never created. Returns the number of warnings."""
    if not has_segments:
        create_as(conn, SEG_RESOLVED, f"SELECT line_no, 0 AS segment_id FROM {STAGE_SEG} WHERE 1 = 0")
        return 0
    create_as(
        conn,
        SEG_RESOLVED,
        f"SELECT ss.line_no, g.id AS segment_id FROM {STAGE_SEG} ss"
        f" JOIN segmail_segments g ON g.name_key = ss.name_key",
    )
    conn.exec_driver_sql(f"CREATE INDEX ix_seg_resolved ON {SEG_RESOLVED} (line_no, segment_id)")
    rows = conn.execute(
        text(
            f"SELECT ss.line_no, ss.name FROM {STAGE_SEG} ss JOIN {STAGE} s ON s.line_no = ss.line_no"
            f" WHERE s.state = 'ok' AND NOT EXISTS (SELECT 1 FROM segmail_segments g WHERE g.name_key = ss.name_key)"
            f" ORDER BY ss.line_no"
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


def _segments_changed(mode: str | None) -> str:
    """SQL: does row s change the memberships of contact c? merge only adds; replace also removes."""
    adds = (
        f"EXISTS (SELECT 1 FROM {SEG_RESOLVED} sr WHERE sr.line_no = s.line_no AND NOT EXISTS"
        f" (SELECT 1 FROM segmail_memberships mm WHERE mm.contact_id = c.id AND mm.segment_id = sr.segment_id))"
    )
    removes = (
        f"EXISTS (SELECT 1 FROM segmail_memberships mm WHERE mm.contact_id = c.id AND NOT EXISTS"
        f" (SELECT 1 FROM {SEG_RESOLVED} sr WHERE sr.line_no = s.line_no AND sr.segment_id = mm.segment_id))"
    )
    return {None: "1 = 0", "merge": adds, "replace": f"{adds} OR {removes}"}[mode]


def resolve_rows(conn: Connection, *, mode: str | None) -> None:
    """RESOLVED(line_no, contact_id, is_new, changed, seg_changed) for every row that lands. New
    contacts get the highest stored id + their line number (gaps are harmless). A row that changes
    neither fields nor memberships is left alone: re-importing a file changes nothing.
    `mode` None: the file has no Segments column."""
    base = conn.execute(text("SELECT COALESCE(MAX(id), 0) FROM segmail_contacts")).scalar_one()
    differs = " OR ".join(f"(s.{c} IS NOT NULL AND s.{c} IS DISTINCT FROM c.{c})" for c in OVERWRITTEN)
    create_as(
        conn,
        RESOLVED,
        f"SELECT s.line_no, COALESCE(c.id, :base + s.line_no) AS contact_id,"
        f" CASE WHEN c.id IS NULL THEN 1 ELSE 0 END AS is_new,"
        f" CASE WHEN c.id IS NOT NULL AND ({differs} OR (s.opt_out = 1 AND NOT c.email_opt_out))"
        f"  THEN 1 ELSE 0 END AS changed,"
        f" CASE WHEN c.id IS NOT NULL AND ({_segments_changed(mode)}) THEN 1 ELSE 0 END AS seg_changed"
        f" FROM {STAGE} s"
        f" LEFT JOIN (SELECT line_no, MIN(contact_id) AS contact_id FROM {STAGE_MATCH} GROUP BY line_no) m"
        f"  ON m.line_no = s.line_no"
        f" LEFT JOIN segmail_contacts c ON c.id = m.contact_id"
        f" WHERE s.state = 'ok'",
        {"base": base},
    )
    conn.exec_driver_sql(f"CREATE UNIQUE INDEX ix_resolved_line ON {RESOLVED} (line_no)")
    conn.exec_driver_sql(f"CREATE INDEX ix_resolved_contact ON {RESOLVED} (contact_id)")
