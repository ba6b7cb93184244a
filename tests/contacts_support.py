"""Helpers shared by the import and contacts tests: what the database holds, read back."""

from __future__ import annotations

from sqlalchemy import text

DEFAULT_SEGMENTS = ("VIP", "Newsletter", "Service Plan")


def create_segments(engine, names=DEFAULT_SEGMENTS) -> None:
    from segmail.contacts.segments import create_segment

    for name in names:
        create_segment(name=name, engine=engine)


def contact_rows(engine) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(text("SELECT * FROM segmail_contacts ORDER BY id"))]


def segments_of(engine) -> dict[str, list[str]]:
    """external ID or e-mail -> sorted segment names."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT COALESCE(c.external_id, c.email), g.name FROM segmail_contacts c"
                " LEFT JOIN segmail_memberships m ON m.contact_id = c.id"
                " LEFT JOIN segmail_segments g ON g.id = m.segment_id ORDER BY 1, 2"
            )
        ).all()
    out: dict[str, list[str]] = {}
    for key, name in rows:
        out.setdefault(key, [])
        if name:
            out[key].append(name)
    return out


def issues(engine, run_id: int) -> list[tuple]:
    """(line, column, severity, reason) of an import run, in report order."""
    with engine.connect() as conn:
        return conn.execute(
            text(
                "SELECT line_no, column_name, severity, reason FROM segmail_import_issues"
                " WHERE import_run_id = :r ORDER BY line_no, id"
            ),
            {"r": run_id},
        ).all()


def count(engine, table: str) -> int:
    with engine.connect() as conn:
        return conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one()
