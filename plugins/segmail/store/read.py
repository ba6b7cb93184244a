"""Every read query of segmail in one place: the CLI, the DAG summaries, the monitoring pages and
the demo read through here. Pages are paged and filtered in SQL, never a full table in memory."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from functools import partial

from sqlalchemy import Connection, Engine, TextClause, bindparam, select, text

from segmail.store.db import default_engine, session_scope
from segmail.store.models import (
    BounceKind,
    Channel,
    DeliveryStatus,
    ImportRun,
    ImportStatus,
    IssueSeverity,
    SentTestMail,
)

IMPORT_COUNTS = ("rows", "created", "updated", "unchanged", "rejected", "duplicates", "warnings")


def recent_imports(*, limit: int = 20, engine: Engine | None = None) -> list[dict]:
    with session_scope(engine) as session:
        runs = session.scalars(select(ImportRun).order_by(ImportRun.id.desc()).limit(limit))
        return [
            {
                "id": r.id,
                "file_name": r.file_name,
                "status": r.status,
                "mode": r.mode,
                "source": r.source,
                **{k: getattr(r, k) for k in IMPORT_COUNTS},
                "error": r.error,
                "report_path": r.report_path,
                "started_at": r.started_at,
                "finished_at": r.finished_at,
            }
            for r in runs
        ]


def finished_import(*, file_name: str, sha256: str, engine: Engine | None = None) -> ImportRun | None:
    """The succeeded import of this exact file (name and content), if there is one."""
    with session_scope(engine) as session:
        return session.scalar(
            select(ImportRun)
            .where(
                ImportRun.file_name == file_name,
                ImportRun.file_sha256 == sha256,
                ImportRun.status == ImportStatus.SUCCEEDED,
            )
            .order_by(ImportRun.id.desc())
            .limit(1)
        )


def mailing_runs(*, mailing: str | None = None, limit: int = 20, engine: Engine | None = None) -> list[dict]:
    """Latest runs with their counts per status (live while a run is sending)."""
    engine = engine or default_engine()
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT id, mailing, dag_run_id, status, dry_run, options, created_at, finished_at, channel"
                " FROM segmail_mailing_runs"
                + (" WHERE mailing = :m" if mailing else "")
                + " ORDER BY id DESC LIMIT :n"
            ),
            {"m": mailing, "n": limit},
        ).all()
    all_totals = runs_totals([r.id for r in rows], engine=engine)
    out = []
    for r in rows:
        totals = all_totals[r.id]
        out.append(
            {
                "run": r.id,
                "mailing": r.mailing,
                "dag_run_id": r.dag_run_id,
                "status": r.status,
                "dry_run": bool(r.dry_run),
                "channel": r.channel,
                "statuses": totals["statuses"],
                "sent": totals["sent"],
                "failed": totals["failed"],
                "skipped": totals["skipped"],
                "pending": totals["pending"],
                "unsubscribed": totals["unsubscribed"],
                **{key: totals[key] for key in ("bounced", *FEEDBACK_COUNTS, *FEEDBACK_RATES)},
                "by_language": totals["by_language"],
                "options": json.loads(r.options or "{}"),
                "created_at": r.created_at,
                "finished_at": r.finished_at,
            }
        )
    return out


def run_deliveries(run_id: int, *, failed_only: bool = False, engine: Engine | None = None) -> list[dict]:
    engine = engine or default_engine()
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT d.id, d.contact_id, c.external_id, d.email, d.mobile_e164, d.language, d.status, d.reason,"
                " d.smtp_code,"
                " d.smtp_response, d.message_id, d.attempts, d.sent_at, d.unsubscribed_at FROM segmail_deliveries d"
                " LEFT JOIN segmail_contacts c ON c.id = d.contact_id WHERE d.mailing_run_id = :r"
                + (" AND d.status = 'failed'" if failed_only else "")
                + " ORDER BY d.id"
            ),
            {"r": run_id},
        ).all()
    return [dict(r._mapping) for r in rows]


def test_mail_log(*, limit: int = 20, engine: Engine | None = None) -> list[dict]:
    with session_scope(engine) as session:
        return [
            {
                "id": t.id,
                "mailing": t.mailing,
                "language": t.language,
                "recipient": t.recipient,
                "subject": t.subject,
                "status": t.status,
                "error": t.error or "",
                "sent_at": t.sent_at,
            }
            for t in session.scalars(select(SentTestMail).order_by(SentTestMail.id.desc()).limit(limit))
        ]


def runs_totals(run_ids: list[int], *, engine: Engine | None = None) -> dict[int, dict]:
    """Counts per status and per language for several runs, and how many of their mails were
    unsubscribed from, in one query. `statuses` holds the counts per status alone: the feedback
    counts merged in beside them reuse a status's name (`delivered`: accepted, no bounce read back)."""
    engine = engine or default_engine()
    totals: dict[int, dict] = {
        run_id: {
            "sent": 0,
            "failed": 0,
            "skipped": 0,
            "pending": 0,
            "unsubscribed": 0,
            "by_language": {},
            "statuses": {},
        }
        for run_id in run_ids
    }
    if not run_ids:
        return totals
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT mailing_run_id, language, status, COUNT(*), COUNT(unsubscribed_at) FROM segmail_deliveries"
                " WHERE mailing_run_id IN :runs GROUP BY mailing_run_id, language, status"
                " ORDER BY mailing_run_id, language, status"
            ).bindparams(bindparam("runs", expanding=True)),
            {"runs": list(run_ids)},
        ).all()
    for run_id, language, status, count, unsubscribed in rows:
        run = totals[run_id]
        run[status] = run.get(status, 0) + count
        run["statuses"][status] = run["statuses"].get(status, 0) + count
        run["unsubscribed"] += unsubscribed
        run["by_language"].setdefault(language, {})[status] = count
    for run_id, feedback in runs_feedback(run_ids, engine=engine).items():
        totals[run_id].setdefault(DeliveryStatus.BOUNCED.value, 0)
        totals[run_id].update(feedback)
    return totals


def run_totals(run_id: int, *, engine: Engine | None = None) -> dict:
    return runs_totals([run_id], engine=engine)[run_id]


# ---------------------------------------------------------------- what came back (bounce mailbox)

FEEDBACK_COUNTS = ("accepted", "delivered", "bounced_hard", "bounced_soft", "complained")
FEEDBACK_RATES = ("bounce_rate", "complaint_rate", "unsubscribe_rate")
_RUNS_FEEDBACK = text(
    "SELECT mailing_run_id,"
    " SUM(CASE WHEN status IN (:sent, :bounced, :delivered, :expired) THEN 1 ELSE 0 END),"
    " SUM(CASE WHEN status = :expired THEN 1 ELSE 0 END),"
    " SUM(CASE WHEN bounce = :hard THEN 1 ELSE 0 END),"
    " SUM(CASE WHEN bounce = :soft THEN 1 ELSE 0 END),"
    " COUNT(complained_at), COUNT(unsubscribed_at)"
    " FROM segmail_deliveries WHERE mailing_run_id IN :runs GROUP BY mailing_run_id"
).bindparams(bindparam("runs", expanding=True))


def _rate(part: int, whole: int) -> float:
    return round(part / whole, 5) if whole else 0.0


def runs_feedback(run_ids: list[int], *, engine: Engine | None = None) -> dict[int, dict]:
    """Per run, in one query: mails the relay accepted, delivered (accepted, no bounce read back),
    hard and soft bounces and complaints from the bounce mailbox, and the rates: bounces over
    accepted, complaints and unsubscribes over delivered (as mailbox providers count them)."""
    out = {run_id: dict.fromkeys(FEEDBACK_COUNTS, 0) for run_id in run_ids}
    if not run_ids:
        return out
    params = {
        "runs": list(run_ids),
        "sent": DeliveryStatus.SENT,
        "bounced": DeliveryStatus.BOUNCED,
        "delivered": DeliveryStatus.DELIVERED,  # an SMS whose delivery report said so
        "expired": DeliveryStatus.EXPIRED,  # an SMS the network gave up on: accepted, not delivered
        "hard": BounceKind.HARD,
        "soft": BounceKind.SOFT,
    }
    with (engine or default_engine()).connect() as conn:
        rows = conn.execute(_RUNS_FEEDBACK, params).all()
    unsubscribed = dict.fromkeys(run_ids, 0)
    for run_id, accepted, expired, hard, soft, complained, unsubscribes in rows:
        delivered = accepted - expired - hard - soft
        out[run_id] = dict(zip(FEEDBACK_COUNTS, (accepted, delivered, hard, soft, complained), strict=True))
        unsubscribed[run_id] = unsubscribes
    for run_id, feedback in out.items():
        feedback["bounce_rate"] = _rate(
            feedback["bounced_hard"] + feedback["bounced_soft"], feedback["accepted"]
        )
        feedback["complaint_rate"] = _rate(feedback["complained"], feedback["delivered"])
        feedback["unsubscribe_rate"] = _rate(unsubscribed[run_id], feedback["delivered"])
    return out


def mailing_run_limits(
    run_ids: list[int], *, engine: Engine | None = None
) -> list[tuple[int, str, list[str]]]:
    """(run, mailing, the rate limits its stored totals exceed) for the given runs that exceed one."""
    if not run_ids:
        return []
    with (engine or default_engine()).connect() as conn:
        rows = conn.execute(
            text(
                "SELECT id, mailing, totals FROM segmail_mailing_runs WHERE id IN :ids ORDER BY id"
            ).bindparams(bindparam("ids", expanding=True)),
            {"ids": list(run_ids)},
        ).all()
    limits = [
        (r.id, r.mailing, list((json.loads(r.totals or "{}").get("over_limits") or {}).values()))
        for r in rows
    ]
    return [entry for entry in limits if entry[2]]


def feedback_rates(
    *, mailing: str | None = None, limit: int = 30, engine: Engine | None = None
) -> list[dict]:
    """Bounce, complaint and unsubscribe rates of the last runs, oldest first (the monitoring chart)."""
    engine = engine or default_engine()
    with engine.connect() as conn:
        runs = conn.execute(
            text(
                "SELECT id, mailing, created_at FROM segmail_mailing_runs WHERE dry_run = :no"
                + (" AND mailing = :m" if mailing else "")
                + " ORDER BY id DESC LIMIT :n"
            ),
            {"no": False, "m": mailing, "n": limit},
        ).all()
    feedback = runs_feedback([r.id for r in runs], engine=engine)
    return [
        {"run": r.id, "mailing": r.mailing, "created_at": r.created_at, **feedback[r.id]}
        for r in reversed(runs)
    ]


# ---------------------------------------------------------------- monitoring pages

PAGE_SIZE = 50
STATUSES = tuple(DeliveryStatus)
MAX_ID = 2**31 - 1  # ids are INTEGER columns: a larger (or non-positive) id names nothing
_LIKE = " LIKE :q ESCAPE '\\'"  # with like_pattern: `%` and `_` in a search are taken literally


def like_pattern(search: str) -> str:
    """`%search%` (lower-cased) for `LIKE :q ESCAPE '\\'`, matching `%`, `_` and `\\` literally."""
    escaped = search.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _is_id(value: int) -> bool:
    return 0 < value <= MAX_ID


def _paged(
    engine: Engine, *, columns: str, base: str, order: str, params: dict, page: int, page_size: int
) -> tuple[list[dict], int]:
    """One page of `SELECT columns base ORDER BY order` and the count of all matching rows."""
    with engine.connect() as conn:
        total = conn.execute(text(f"SELECT COUNT(*) {base}"), params).scalar_one()
        rows = conn.execute(
            text(f"SELECT {columns} {base} ORDER BY {order} LIMIT :limit OFFSET :offset"),
            {**params, "limit": page_size, "offset": max(page - 1, 0) * page_size},
        ).all()
    return [dict(r._mapping) for r in rows], total


def _all_pages(fetch_page: Callable[..., tuple[list[dict], int]], *, page_size: int = 5000) -> Iterator[dict]:
    """Every row of a paged query, a few thousand at a time (for CSV downloads)."""
    page = 1
    while True:
        rows, _ = fetch_page(page=page, page_size=page_size)
        yield from rows
        if len(rows) < page_size:
            return
        page += 1


def statuses_of(channel: str | None) -> tuple[str, ...]:
    """The statuses a run of this channel can show: delivery reports exist for SMS only."""
    if channel == Channel.SMS:
        return STATUSES
    return tuple(s for s in STATUSES if s not in (DeliveryStatus.DELIVERED, DeliveryStatus.EXPIRED))


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
            f"(LOWER(d.email){_LIKE} OR LOWER(c.external_id){_LIKE} OR LOWER(d.reason){_LIKE}"
            f" OR LOWER(c.last_name){_LIKE} OR d.mobile_e164{_LIKE})"
        )
        params["q"] = like_pattern(search)
    return _paged(
        engine,
        columns="d.id, d.contact_id, c.external_id, c.first_name, c.last_name, d.email, d.mobile_e164,"
        " d.language, d.status,"
        " d.reason, d.smtp_code, d.smtp_response, d.message_id, d.sent_at, d.unsubscribed_at",
        base="FROM segmail_deliveries d LEFT JOIN segmail_contacts c ON c.id = d.contact_id WHERE "
        + " AND ".join(where),
        order="d.id",
        params=params,
        page=page,
        page_size=page_size,
    )


def iter_run_mails(engine: Engine, run_id: int, *, status: str | None, search: str | None) -> Iterator[dict]:
    return _all_pages(partial(run_page, engine, run_id, status=status, search=search))


def suppressions_page(
    engine: Engine, *, search: str | None, page: int, page_size: int = PAGE_SIZE
) -> tuple[list[dict], int]:
    """The suppression list, newest first, searchable by address, reason and source."""
    where, params = "", {}
    if search:
        where = f" WHERE LOWER(s.address_key){_LIKE} OR LOWER(s.reason){_LIKE} OR LOWER(s.source){_LIKE}"
        params["q"] = like_pattern(search)
    return _paged(
        engine,
        columns="s.address_key AS address, s.reason, s.source, s.mailing_run_id, r.mailing, s.created_at",
        base="FROM segmail_suppressions s LEFT JOIN segmail_mailing_runs r ON r.id = s.mailing_run_id"
        + where,
        order="s.created_at DESC, s.id DESC",
        params=params,
        page=page,
        page_size=page_size,
    )


def iter_suppressions(engine: Engine, *, search: str | None) -> Iterator[dict]:
    return _all_pages(partial(suppressions_page, engine, search=search))


def contact_detail(engine: Engine, contact_id: int) -> dict | None:
    """A contact with its salesperson, segments, every delivery (skipped ones with their reason),
    activity log and the suppression of its address; None when there is no such contact."""
    if not _is_id(contact_id):
        return None
    with engine.connect() as conn:
        contact = conn.execute(
            text("SELECT * FROM segmail_contacts WHERE id = :c"), {"c": contact_id}
        ).first()
        if contact is None:
            return None
        params = {"c": contact_id}
        return {
            "contact": dict(contact._mapping),
            "salesperson": _first(conn, _CONTACT_SALESPERSON, {"code": contact.salesperson_code}),
            "segments": conn.execute(_CONTACT_SEGMENTS, params).scalars().all(),
            "deliveries": _all(conn, _CONTACT_DELIVERIES, params),
            "activity": _all(conn, _CONTACT_ACTIVITY, params),
            "suppression": _suppression_of(conn, contact.email_key),
        }


_CONTACT_SALESPERSON = text("SELECT code, name, email FROM segmail_salespeople WHERE code = :code")
_CONTACT_SEGMENTS = text(
    "SELECT g.name FROM segmail_memberships m JOIN segmail_segments g ON g.id = m.segment_id"
    " WHERE m.contact_id = :c ORDER BY g.name_key"
)
CONTACT_ROWS = 200  # deliveries and activity rows shown on a contact's page, newest first
_CONTACT_DELIVERIES = text(
    "SELECT d.mailing_run_id, r.mailing, r.dry_run, r.created_at AS run_created_at, d.email, d.mobile_e164,"
    " d.language,"
    " d.status, d.reason, d.smtp_code, d.smtp_response, d.sent_at, d.unsubscribed_at"
    " FROM segmail_deliveries d JOIN segmail_mailing_runs r ON r.id = d.mailing_run_id"
    f" WHERE d.contact_id = :c ORDER BY d.id DESC LIMIT {CONTACT_ROWS}"
)
_CONTACT_ACTIVITY = text(
    "SELECT occurred_at, kind, mailing, mailing_run_id, subject, detail, language, salesperson_code,"
    " message_id FROM segmail_activity_log WHERE contact_id = :c"
    f" ORDER BY occurred_at DESC, id DESC LIMIT {CONTACT_ROWS}"
)


def _first(conn: Connection, query: TextClause, params: dict) -> dict | None:
    row = conn.execute(query, params).first()
    return dict(row._mapping) if row else None


def _all(conn: Connection, query: TextClause, params: dict) -> list[dict]:
    return [dict(r._mapping) for r in conn.execute(query, params)]


def _suppression_of(conn: Connection, address_key: str | None) -> dict | None:
    """The suppression of a contact's address (it holds for every contact sharing it), if any."""
    if not address_key:
        return None
    return _first(conn, _SUPPRESSION_OF, {"key": address_key})


_SUPPRESSION_OF = text(
    "SELECT reason, source, mailing_run_id, created_at FROM segmail_suppressions WHERE address_key = :key"
)


def find_contacts(engine: Engine, search: str, *, limit: int = 50) -> list[dict]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT id, external_id, first_name, last_name, email, organization, language"
                f" FROM segmail_contacts WHERE LOWER(email){_LIKE} OR LOWER(external_id){_LIKE}"
                f" OR LOWER(last_name){_LIKE} ORDER BY id LIMIT :n"
            ),
            {"q": like_pattern(search), "n": limit},
        ).all()
    return [dict(r._mapping) for r in rows]


def mailing_run_id(*, mailing: str, dag_run_id: str, engine: Engine | None = None) -> int | None:
    """The segmail run behind one Airflow DAG run of a mailing, if it froze an audience or was
    skipped as too late."""
    engine = engine or default_engine()
    with engine.connect() as conn:
        return conn.execute(
            text("SELECT id FROM segmail_mailing_runs WHERE mailing = :m AND dag_run_id = :d"),
            {"m": mailing, "d": dag_run_id},
        ).scalar()


_MAILING_RUN = text(
    "SELECT id, mailing, dag_run_id, status, dry_run, options, created_at, finished_at, channel"
    " FROM segmail_mailing_runs WHERE id = :r"
)


def mailing_run(engine: Engine, run_id: int) -> dict | None:
    """One run (options decoded, with its approval if one was asked), or None when there is no such run."""
    if not _is_id(run_id):
        return None
    with engine.connect() as conn:
        run = _first(conn, _MAILING_RUN, {"r": run_id})
    if run is not None:
        run["dry_run"] = bool(run["dry_run"])
        run["options"] = json.loads(run["options"] or "{}")
        run["approval"] = run_approval(engine, run_id)
    return run


_RUN_APPROVAL = text(
    "SELECT status, requested_at, approvers, decided_at, decided_by, timed_out, reason, changes"
    " FROM segmail_approvals WHERE mailing_run_id = :r"
)


def run_approval(engine: Engine, run_id: int) -> dict | None:
    """The run's approval (who decided, when, why, what they narrowed), or None when none was asked."""
    with engine.connect() as conn:
        approval = _first(conn, _RUN_APPROVAL, {"r": run_id})
    if approval is not None:
        approval["approvers"] = json.loads(approval["approvers"] or "[]")
        approval["changes"] = json.loads(approval["changes"] or "{}")
        approval["timed_out"] = bool(approval["timed_out"])
    return approval


_SKIP_REASONS = text(
    "SELECT reason, COUNT(*) AS mails FROM segmail_deliveries WHERE mailing_run_id = :r AND status = :skipped"
    " GROUP BY reason ORDER BY COUNT(*) DESC, reason LIMIT :n"
)


def skip_reasons(engine: Engine, run_id: int, *, limit: int = 6) -> list[dict]:
    """Why a run's mails were skipped, the commonest reasons first."""
    with engine.connect() as conn:
        return _all(conn, _SKIP_REASONS, {"r": run_id, "skipped": DeliveryStatus.SKIPPED, "n": limit})


_IMPORT_RUN = text(
    "SELECT id, file_name, file_sha256, mode, source, status, rejected, report_path"
    " FROM segmail_import_runs WHERE id = :i"
)


def import_run(engine: Engine, import_run_id: int) -> dict | None:
    if not _is_id(import_run_id):
        return None
    with engine.connect() as conn:
        return _first(conn, _IMPORT_RUN, {"i": import_run_id})


def rejected_reasons(engine: Engine, import_run_id: int) -> dict[int, str]:
    """Why each rejected row of an import was rejected, by spreadsheet row ("Column: reason; ...")."""
    reasons: dict[int, list[str]] = {}
    for line_no, column, _value, _severity, reason in iter_issues(
        engine, import_run_id, severity=IssueSeverity.ERROR
    ):
        if line_no is not None:
            reasons.setdefault(line_no, []).append(f"{column}: {reason}" if column else reason)
    return {line_no: "; ".join(texts) for line_no, texts in reasons.items()}


def feedback_reports_page(
    engine: Engine, *, outcome: str | None, search: str | None, page: int, page_size: int = PAGE_SIZE
) -> tuple[list[dict], int]:
    """The reports read from the bounce mailbox, newest first: what each was and what it did."""
    where, params = [], {}
    if outcome:
        where.append("f.outcome = :outcome")
        params["outcome"] = outcome
    if search:
        where.append("(LOWER(f.address) LIKE :q OR LOWER(f.sender) LIKE :q OR LOWER(f.detail) LIKE :q)")
        params["q"] = f"%{search.lower()}%"
    return _paged(
        engine,
        columns="f.id, f.processed_at, f.reported_at, f.kind, f.severity, f.outcome, f.address, f.status_code,"
        " f.detector, f.confidence, f.mailing_run_id, f.contact_id, f.sender, f.subject, f.detail",
        base="FROM segmail_feedback_reports f" + (" WHERE " + " AND ".join(where) if where else ""),
        order="f.id DESC",
        params=params,
        page=page,
        page_size=page_size,
    )


def iter_issues(engine: Engine, import_run_id: int, *, severity: str | None = None):
    query = (
        "SELECT line_no, column_name, value, severity, reason FROM segmail_import_issues"
        " WHERE import_run_id = :run"
        + (" AND severity = :severity" if severity else "")
        + " ORDER BY line_no, id"
    )
    with engine.connect() as conn:
        yield from conn.execute(text(query), {"run": import_run_id, "severity": severity})


# ---------------------------------------------------------------- mail previews

# What a template may show of a contact, as sending reads it (deliveries._PENDING_MAILS): the
# segment's salesperson stands in when the contact has none.
_PREVIEW_FIELDS = (
    "c.email, c.first_name, c.last_name, c.organization, c.account_number, c.country_code, c.external_id,"
    " c.language, c.mobile_e164, g.name AS segment, COALESCE(sp.code, gsp.code) AS sp_code,"
    " COALESCE(sp.name, gsp.name) AS sp_name, COALESCE(sp.email, gsp.email) AS sp_email"
)
_PREVIEW_SALESPEOPLE = (
    " LEFT JOIN segmail_salespeople sp ON sp.code = c.salesperson_code"
    " LEFT JOIN segmail_salespeople gsp ON gsp.id = g.salesperson_id"
)
_PREVIEW_CONTACT = text(
    f"SELECT 0 AS id, c.id AS contact_id, {_PREVIEW_FIELDS}, c.email_opt_out, c.sms_opt_out,"
    " s.reason AS suppressed"
    " FROM segmail_contacts c"
    " LEFT JOIN segmail_segments g ON g.id = (SELECT MIN(m.segment_id) FROM segmail_memberships m"
    "  JOIN segmail_segments x ON x.id = m.segment_id WHERE m.contact_id = c.id AND x.name_key IN :segments)"
    f"{_PREVIEW_SALESPEOPLE} LEFT JOIN segmail_suppressions s ON s.address_key = c.email_key"
    " WHERE c.external_id = :k OR c.email_key = :lk"
    " ORDER BY CASE WHEN c.external_id = :k THEN 0 ELSE 1 END, c.id LIMIT 1"
).bindparams(bindparam("segments", expanding=True))
_RUN_FIELDS = _PREVIEW_FIELDS.replace("c.email,", "d.email,", 1).replace(
    "c.mobile_e164,", "COALESCE(d.mobile_e164, c.mobile_e164) AS mobile_e164,", 1
)
_SEGMENT_SALESPERSON = text(
    "SELECT sp.code, sp.name, sp.email FROM segmail_segments g"
    " JOIN segmail_salespeople sp ON sp.id = g.salesperson_id WHERE g.name_key = :name"
)
_RUN_LANGUAGES = text(
    "SELECT DISTINCT language FROM segmail_deliveries WHERE mailing_run_id = :r AND language IS NOT NULL"
    " ORDER BY language"
)


def preview_contact(engine: Engine, key: str, *, segments: list[str]) -> dict | None:
    """The contact with this external ID (else e-mail), with the audience segment it would come by
    (the first of `segments` it belongs to) and that segment's salesperson; None if there is none."""
    params = {"k": key, "lk": key.strip().lower(), "segments": [s.casefold() for s in segments] or [""]}
    with engine.connect() as conn:
        found = _first(conn, _PREVIEW_CONTACT, params)
    if found is not None:
        for flag in ("email_opt_out", "sms_opt_out"):
            found[flag] = bool(found[flag])
    return found


def segment_salesperson(engine: Engine, segment: str) -> dict | None:
    """The salesperson assigned to a segment (the sample contact's stand-in), if any."""
    with engine.connect() as conn:
        return _first(conn, _SEGMENT_SALESPERSON, {"name": segment.casefold()})


def run_languages(engine: Engine, run_id: int) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(_RUN_LANGUAGES, {"r": run_id}).scalars())


def run_delivery(
    engine: Engine, run_id: int, *, key: str | None = None, language: str | None = None
) -> dict | None:
    """One mail of a run for its preview: the contact's (by external ID, else e-mail) when `key` is
    given, else the first one of `language` that was not skipped (else the first at all)."""
    where, params = ["d.mailing_run_id = :r"], {"r": run_id, "k": key, "lk": (key or "").strip().lower()}
    if key:
        where.append("(c.external_id = :k OR LOWER(d.email) = :lk)")
    if language:
        where.append("d.language = :l")
        params["l"] = language
    query = text(
        # the address and (SMS) number frozen with the run, as the send queries read them
        f"SELECT d.id, d.contact_id, {_RUN_FIELDS},"
        " d.language AS variant, d.status, d.reason, d.message_id, d.sent_at"
        " FROM segmail_deliveries d JOIN segmail_contacts c ON c.id = d.contact_id"
        f" LEFT JOIN segmail_segments g ON g.id = d.segment_id{_PREVIEW_SALESPEOPLE}"
        f" WHERE {' AND '.join(where)} ORDER BY CASE WHEN c.external_id = :k THEN 0 ELSE 1 END,"
        " CASE WHEN d.status = :skipped THEN 1 ELSE 0 END, d.id LIMIT 1"
    )
    with engine.connect() as conn:
        return _first(conn, query, {**params, "skipped": DeliveryStatus.SKIPPED})
