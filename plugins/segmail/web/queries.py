"""Read-only queries behind the monitoring pages: paged, filtered, never a full table in memory."""

from __future__ import annotations

from sqlalchemy import Engine, text

PAGE_SIZE = 50
STATUSES = ("sent", "failed", "skipped", "pending")


def run_page(
    engine: Engine,
    run_id: int,
    *,
    status: str | None,
    search: str | None,
    page: int,
    page_size: int = PAGE_SIZE,
) -> tuple[list[dict], int]:
    where = ["d.mailing_run_id = :r"]
    params: dict = {"r": run_id}
    if status in STATUSES:
        where.append("d.status = :status")
        params["status"] = status
    if search:
        where.append(
            "(LOWER(d.email) LIKE :q OR LOWER(c.external_id) LIKE :q OR LOWER(d.reason) LIKE :q"
            " OR LOWER(c.last_name) LIKE :q)"
        )
        params["q"] = f"%{search.lower()}%"
    sql_where = " AND ".join(where)
    base = f"FROM segmail_deliveries d LEFT JOIN segmail_contacts c ON c.id = d.contact_id WHERE {sql_where}"
    with engine.connect() as conn:
        total = conn.execute(text(f"SELECT COUNT(*) {base}"), params).scalar_one()
        rows = conn.execute(
            text(
                f"SELECT d.id, d.contact_id, c.external_id, c.first_name, c.last_name, d.email, d.language, d.status,"
                f" d.reason, d.smtp_code, d.smtp_response, d.message_id, d.sent_at {base} ORDER BY d.id"
                f" LIMIT :limit OFFSET :offset"
            ),
            {**params, "limit": page_size, "offset": max(page - 1, 0) * page_size},
        ).all()
    return [dict(r._mapping) for r in rows], total


def iter_run_mails(engine: Engine, run_id: int, *, status: str | None, search: str | None):
    page = 1
    while True:
        rows, _ = run_page(engine, run_id, status=status, search=search, page=page, page_size=5000)
        yield from rows
        if len(rows) < 5000:
            return
        page += 1


def contact_detail(engine: Engine, contact_id: int) -> dict | None:
    with engine.connect() as conn:
        contact = conn.execute(
            text("SELECT * FROM segmail_contacts WHERE id = :c"), {"c": contact_id}
        ).first()
        if contact is None:
            return None
        segments = (
            conn.execute(
                text(
                    "SELECT g.name FROM segmail_memberships m JOIN segmail_segments g ON g.id = m.segment_id"
                    " WHERE m.contact_id = :c ORDER BY g.name_key"
                ),
                {"c": contact_id},
            )
            .scalars()
            .all()
        )
        activity = conn.execute(
            text(
                "SELECT occurred_at, mailing, mailing_run_id, subject, language, salesperson_code, message_id"
                " FROM segmail_activity_log WHERE contact_id = :c ORDER BY occurred_at DESC LIMIT 200"
            ),
            {"c": contact_id},
        ).all()
    return {
        "contact": dict(contact._mapping),
        "segments": segments,
        "activity": [dict(a._mapping) for a in activity],
    }


def find_contacts(engine: Engine, search: str, *, limit: int = 50) -> list[dict]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT id, external_id, first_name, last_name, email, language FROM segmail_contacts"
                " WHERE LOWER(email) LIKE :q OR LOWER(external_id) LIKE :q OR LOWER(last_name) LIKE :q"
                " ORDER BY id LIMIT :n"
            ),
            {"q": f"%{search.lower()}%", "n": limit},
        ).all()
    return [dict(r._mapping) for r in rows]
