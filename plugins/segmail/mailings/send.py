"""A mailing run: freeze the audience, plan batches, send each batch, summarise.

Exactly-once rests on three things: a delivery row is unique per (run, contact) and created when
the run starts; a batch sends only rows still `pending`; and every outcome is written before the
task ends, also when it fails (outcomes are flushed every few dozen mails and in `finally`). SMTP
retries are ours: a 4xx or a dropped connection leaves the mail `pending` and the task raises
for Airflow's retry with backoff; a 5xx marks it `failed` with the server's code and text.
"""

from __future__ import annotations

import json
import logging
import smtplib
import socket
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parseaddr
from typing import Protocol

from sqlalchemy import Connection, Engine, text

from segmail.addresses import safe_address
from segmail.errors import NotFound, SegmailError
from segmail.mailings.definition import Mailing
from segmail.mailings.mime import MessageFactory
from segmail.mailings.render import CompiledVariant, compile_variant, message_context
from segmail.store.db import bulk_insert, default_engine
from segmail.store.read import run_totals

log = logging.getLogger(__name__)
MAX_BATCHES = 1000  # stays under Airflow's [core] max_map_length of 1024
FLUSH_EVERY = 50
FLUSH_SECONDS = 1.0


class TransientSendError(SegmailError):
    """Mails are left pending after a temporary failure; the task should be retried."""


class FailureThresholdExceeded(SegmailError):
    pass


# ---------------------------------------------------------------- transport


class Transport(Protocol):
    def open(self) -> None: ...
    def send(self, envelope_from: str, recipient: str, data: bytes) -> tuple[int, str]: ...
    def close(self) -> None: ...


class SmtpHookTransport:
    """One SMTP connection from the Airflow connection, through the SMTP provider's hook.

    The hook connects, starts TLS and logs in; sending goes through MAIL/RCPT/DATA here so every
    mail is sent once per call and its reply is kept (the hook's own send retries on any error).
    """

    def __init__(self, conn_id: str) -> None:
        self.conn_id = conn_id
        self.hook = None
        self.client: smtplib.SMTP | None = None

    def open(self) -> None:
        from airflow.providers.smtp.hooks.smtp import SmtpHook

        self.hook = SmtpHook(smtp_conn_id=self.conn_id)
        self.hook.get_conn()
        self.client = self.hook._smtp_client  # the hook exposes its client only through this attribute
        self.client.ehlo_or_helo_if_needed()

    def send(self, envelope_from: str, recipient: str, data: bytes) -> tuple[int, str]:
        client = self.client
        code, reply = client.mail(envelope_from)
        if code != 250:
            client.rset()
            raise smtplib.SMTPSenderRefused(code, reply, envelope_from)
        code, reply = client.rcpt(recipient)
        if code not in (250, 251):
            client.rset()
            raise smtplib.SMTPRecipientsRefused({recipient: (code, reply)})
        code, reply = client.data(data)
        if code != 250:
            client.rset()
            raise smtplib.SMTPDataError(code, reply)
        return code, reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)

    def close(self) -> None:
        if self.client is not None:
            try:
                self.client.quit()
            except (smtplib.SMTPException, OSError):
                self.client.close()
        self.client = None


def classify(exc: BaseException) -> tuple[str, int | None, str]:
    """('failed' | 'transient' | 'disconnected', code, text) for an error raised while sending."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, reply = next(iter(exc.recipients.values()))
    elif isinstance(exc, smtplib.SMTPResponseException):
        code, reply = exc.smtp_code, exc.smtp_error
    elif isinstance(exc, smtplib.SMTPServerDisconnected | ConnectionError | socket.timeout | OSError):
        return "disconnected", None, f"connection lost: {exc or type(exc).__name__}"
    else:
        return "transient", None, f"{type(exc).__name__}: {exc}"
    reply_text = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
    if code == -1:
        return "disconnected", None, f"connection lost: {reply_text}"
    return ("failed" if 500 <= code < 600 else "transient"), code, reply_text


# ---------------------------------------------------------------- freeze and plan


def _audience_ids(conn: Connection, names: list[str]) -> list[int]:
    keys = [n.casefold() for n in names]
    found = dict(conn.execute(text("SELECT name_key, id FROM segmail_segments")).all())
    missing = [n for n, k in zip(names, keys, strict=True) if k not in found]
    if missing:
        raise NotFound(f"audience segment(s) not found: {', '.join(missing)}")
    return [found[k] for k in keys]


def freeze_audience(
    mailing: Mailing,
    *,
    dag_run_id: str,
    dry_run: bool = False,
    languages: list[str] | None = None,
    max_recipients: int | None = None,
    engine: Engine | None = None,
    now: datetime | None = None,
) -> int:
    """Create the run's delivery rows once; a retried or cleared task returns the same run unchanged."""
    engine = engine or default_engine()
    now = now or datetime.now(UTC)
    with engine.begin() as conn:
        existing = conn.execute(
            text("SELECT id FROM segmail_mailing_runs WHERE mailing = :m AND dag_run_id = :d"),
            {"m": mailing.slug, "d": dag_run_id},
        ).scalar()
        if existing is not None:
            return existing
        include = _audience_ids(conn, mailing.audience.segments)
        exclude = (
            _audience_ids(conn, mailing.audience.exclude_segments)
            if mailing.audience.exclude_segments
            else []
        )
        rows = conn.execute(
            text(
                "SELECT c.id, c.email, c.email_key, c.email_opt_out, c.language, m.segment_id"
                " FROM segmail_contacts c"
                " JOIN (SELECT contact_id, MIN(segment_id) AS segment_id FROM segmail_memberships"
                "       WHERE segment_id IN :include GROUP BY contact_id) m ON m.contact_id = c.id"
                + (
                    " WHERE NOT EXISTS (SELECT 1 FROM segmail_memberships x WHERE x.contact_id = c.id"
                    "  AND x.segment_id IN :exclude)"
                    if exclude
                    else ""
                )
                + " ORDER BY c.id"
            ).bindparams(*_expanding("include", "exclude")[: 2 if exclude else 1]),
            {"include": include, "exclude": exclude},
        ).all()
        wanted = {lang.casefold() for lang in languages} if languages else None
        options = {
            "languages": languages or "all",
            "max_recipients": max_recipients or None,
            "excluded_by_language": 0,
            "over_max_recipients": 0,
        }
        deliveries = []
        sendable = 0
        # An opt-out belongs to the address: another contact sharing it is not mailed either.
        opted_out_addresses = {row.email_key for row in rows if row.email_opt_out and row.email_key}
        addressed: set[str] = set()
        for contact_id, email, email_key, opted_out, language, segment_id in rows:
            variant = mailing.variant_for(language)
            if wanted is not None and variant.casefold() not in wanted:
                options["excluded_by_language"] += 1
                continue
            reason = None
            if opted_out:
                reason = "opted out"
            elif email_key in opted_out_addresses:
                reason = "opted out: another contact with this address opted out"
            elif not email:
                reason = "no e-mail address"
            elif safe_address(email) is None:
                reason = (
                    f"invalid e-mail address {email!r}"
                    if email.isascii()
                    else f"internationalized address {email!r} needs SMTPUTF8, which segmail does not send"
                )
            elif email_key in addressed:
                reason = "duplicate address: another contact of this run gets the mail at this address"
            elif max_recipients and sendable >= max_recipients:
                options["over_max_recipients"] += 1
                continue
            if reason is None:
                sendable += 1
                addressed.add(email_key)
            deliveries.append(
                (contact_id, segment_id, email, variant, "skipped" if reason else "pending", reason)
            )
        run_id = conn.execute(
            text(
                "INSERT INTO segmail_mailing_runs (mailing, dag_run_id, status, dry_run, options, created_at)"
                " VALUES (:m, :d, 'frozen', :dry, :o, :now) RETURNING id"
            ),
            {"m": mailing.slug, "d": dag_run_id, "dry": dry_run, "o": json.dumps(options), "now": now},
        ).scalar_one()
        bulk_insert(
            conn,
            "segmail_deliveries",
            (
                "mailing_run_id",
                "contact_id",
                "segment_id",
                "email",
                "language",
                "status",
                "reason",
                "attempts",
                "updated_at",
            ),
            [(run_id, *d, 0, now) for d in deliveries],
        )
    log.info(
        "mailing %s run %s: %d deliveries frozen (%d to send), options %s",
        mailing.slug,
        run_id,
        len(deliveries),
        sendable,
        options,
    )
    return run_id


def _expanding(*names: str):  # noqa: ANN202
    from sqlalchemy import bindparam

    return [bindparam(name, expanding=True) for name in names]


def plan_batches(run_id: int, *, batch_size: int, engine: Engine | None = None) -> list[dict]:
    """Split pending deliveries into batches per language; the same answer on every call."""
    engine = engine or default_engine()
    with engine.begin() as conn:
        batches = _batches(conn, run_id)
        if batches:
            return batches
        pending = conn.execute(
            text(
                "SELECT language, id FROM segmail_deliveries WHERE mailing_run_id = :r AND status = 'pending'"
                " ORDER BY language, id"
            ),
            {"r": run_id},
        ).all()
        by_language: dict[str, list[int]] = defaultdict(list)
        for language, delivery_id in pending:
            by_language[language].append(delivery_id)
        # Raise the batch size if needed so a run never maps more than MAX_BATCHES tasks.
        size = batch_size
        while sum(-(-len(ids) // size) for ids in by_language.values()) > MAX_BATCHES:
            size *= 2
        batch_no = 0
        for language in sorted(by_language):
            ids = by_language[language]
            for start in range(0, len(ids), size):
                part = ids[start : start + size]
                batch_no += 1
                batch_id = conn.execute(
                    text(
                        "INSERT INTO segmail_delivery_batches (mailing_run_id, batch_no, language, size)"
                        " VALUES (:r, :n, :l, :s) RETURNING id"
                    ),
                    {"r": run_id, "n": batch_no, "l": language, "s": len(part)},
                ).scalar_one()
                conn.execute(
                    text(
                        "UPDATE segmail_deliveries SET batch_id = :b WHERE mailing_run_id = :r AND language = :l"
                        " AND status = 'pending' AND id BETWEEN :lo AND :hi"
                    ),
                    {"b": batch_id, "r": run_id, "l": language, "lo": part[0], "hi": part[-1]},
                )
        conn.execute(text("UPDATE segmail_mailing_runs SET status = 'sending' WHERE id = :r"), {"r": run_id})
        return _batches(conn, run_id)


def _batches(conn: Connection, run_id: int) -> list[dict]:
    return [
        {"batch_id": bid, "label": f"{language} #{no}", "size": size}
        for bid, no, language, size in conn.execute(
            text(
                "SELECT id, batch_no, language, size FROM segmail_delivery_batches WHERE mailing_run_id = :r"
                " ORDER BY batch_no"
            ),
            {"r": run_id},
        )
    ]


# ---------------------------------------------------------------- send


@dataclass
class BatchResult:
    batch_id: int
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    pending: int = 0
    last_error: str | None = None

    def as_dict(self) -> dict:
        return {
            k: getattr(self, k) for k in ("batch_id", "sent", "failed", "skipped", "pending", "last_error")
        }


@dataclass
class _Outcomes:
    """Outcomes not yet written; flushed in small groups and always before the batch returns or raises."""

    engine: Engine
    rows: list[dict] = field(default_factory=list)
    activity: list[tuple] = field(default_factory=list)
    last_flush: float = field(default_factory=time.monotonic)

    def add(self, row: dict, activity: tuple | None = None) -> None:
        self.rows.append(row)
        if activity is not None:
            self.activity.append(activity)
        if len(self.rows) >= FLUSH_EVERY or time.monotonic() - self.last_flush > FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        if not self.rows:
            return
        with self.engine.begin() as conn:
            conn.execute(
                text(
                    "UPDATE segmail_deliveries SET status = :status, reason = :reason, smtp_code = :code,"
                    " smtp_response = :response, message_id = :message_id, sent_at = :sent_at,"
                    " attempts = attempts + 1, updated_at = :now WHERE id = :id AND status = 'pending'"
                ),
                self.rows,
            )
            if self.activity:
                conn.execute(
                    text(
                        "INSERT INTO segmail_activity_log (contact_id, occurred_at, kind, mailing, mailing_run_id,"
                        " subject, language, salesperson_code, message_id)"
                        " VALUES (:contact_id, :at, 'mailing', :mailing, :run, :subject, :language, :salesperson,"
                        " :message_id) ON CONFLICT (mailing_run_id, contact_id) DO NOTHING"
                    ),
                    [
                        dict(
                            zip(
                                (
                                    "contact_id",
                                    "at",
                                    "mailing",
                                    "run",
                                    "subject",
                                    "language",
                                    "salesperson",
                                    "message_id",
                                ),
                                a,
                                strict=True,
                            )
                        )
                        for a in self.activity
                    ],
                )
        self.rows, self.activity = [], []
        self.last_flush = time.monotonic()


def _load_batch(conn: Connection, batch_id: int) -> tuple[dict, list]:
    batch = (
        conn.execute(
            text(
                "SELECT b.id, b.language, b.mailing_run_id, r.mailing, r.dry_run FROM segmail_delivery_batches b"
                " JOIN segmail_mailing_runs r ON r.id = b.mailing_run_id WHERE b.id = :b"
            ),
            {"b": batch_id},
        )
        .one()
        ._asdict()
    )
    rows = conn.execute(
        text(
            "SELECT d.id, d.contact_id, d.email, c.first_name, c.last_name, c.organization, c.account_number,"
            " c.country_code, c.external_id, c.language, c.mobile_e164, g.name AS segment,"
            " COALESCE(sp.code, gsp.code) AS sp_code, COALESCE(sp.name, gsp.name) AS sp_name,"
            " COALESCE(sp.email, gsp.email) AS sp_email"
            " FROM segmail_deliveries d JOIN segmail_contacts c ON c.id = d.contact_id"
            " LEFT JOIN segmail_segments g ON g.id = d.segment_id"
            " LEFT JOIN segmail_salespeople sp ON sp.code = c.salesperson_code"
            " LEFT JOIN segmail_salespeople gsp ON gsp.id = g.salesperson_id"
            " WHERE d.batch_id = :b AND d.status = 'pending' ORDER BY d.id"
        ),
        {"b": batch_id},
    ).all()
    return batch, rows


def sender_domain(address: str) -> str:
    return parseaddr(address)[1].rpartition("@")[2] or "segmail.dev.local"


def send_batch(
    batch_id: int,
    *,
    mailing: Mailing,
    transport: Transport,
    final_try: bool = False,
    engine: Engine | None = None,
    compiled: CompiledVariant | None = None,
) -> BatchResult:
    """Send the pending mails of one batch over one connection.

    Raises TransientSendError when mails stay pending (4xx, dropped connection) and this is not the
    final try; on the final try they are marked failed with the last reason instead.
    """
    engine = engine or default_engine()
    with engine.connect() as conn:
        batch, rows = _load_batch(conn, batch_id)
    result = BatchResult(batch_id)
    if not rows:
        return result
    run_id = batch["mailing_run_id"]
    variant = compiled or compile_variant(mailing, batch["language"])
    factory = MessageFactory(
        variant, domain=sender_domain(variant.from_addr), list_unsubscribe=mailing.list_unsubscribe
    )
    outcomes = _Outcomes(engine)
    interval = 1.0 / mailing.rate_limit_per_second if mailing.rate_limit_per_second else 0.0
    left_pending: list[int] = []
    connected = False
    try:
        if not batch["dry_run"]:
            transport.open()
            connected = True
        next_slot = time.monotonic()
        for index, row in enumerate(rows):
            contact = {
                "first_name": row.first_name,
                "last_name": row.last_name,
                "email": row.email,
                "organization": row.organization or "",
                "account_number": row.account_number or "",
                "country_code": row.country_code,
                "external_id": row.external_id or "",
                "language": row.language or "",
                "mobile": row.mobile_e164 or "",
            }
            salesperson = {"code": row.sp_code or "", "name": row.sp_name or "", "email": row.sp_email or ""}
            now = datetime.now(UTC)
            base = {"id": row.id, "code": None, "response": None, "sent_at": None, "now": now}
            message_id = factory.message_id(run_id, row.contact_id)
            try:
                subject, body_text, body_html = variant.render(
                    message_context(
                        contact=contact, segment=row.segment, salesperson=salesperson, mailing=mailing
                    )
                )
            except Exception as exc:  # a template that fails for one contact fails that mail, not the run
                outcomes.add(
                    {**base, "status": "failed", "reason": f"rendering failed: {exc}", "message_id": None}
                )
                result.failed += 1
                continue
            data = factory.build(
                to_name=f"{row.first_name} {row.last_name}",
                to_addr=row.email,
                subject=subject,
                text=body_text,
                html=body_html,
                message_id=message_id,
                date=now,
            )
            if batch["dry_run"]:
                outcomes.add(
                    {
                        **base,
                        "status": "skipped",
                        "reason": "dry run: rendered, not sent",
                        "message_id": message_id,
                    }
                )
                result.skipped += 1
                continue
            if interval:
                delay = next_slot - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                next_slot = max(next_slot, time.monotonic()) + interval
            try:
                code, reply = transport.send(factory.envelope_from, row.email, data)
            except Exception as exc:
                kind, code, reply = classify(exc)
                result.last_error = f"{code} {reply}" if code else reply
                if kind == "failed":
                    outcomes.add(
                        {
                            **base,
                            "status": "failed",
                            "reason": "rejected by the server",
                            "code": code,
                            "response": reply[:2000],
                            "message_id": message_id,
                        }
                    )
                    result.failed += 1
                    continue
                left_pending.append(row.id)
                if kind == "disconnected":  # this connection is gone: the rest waits for the retry
                    left_pending.extend(r.id for r in rows[index + 1 :])
                    break
                continue
            outcomes.add(
                {
                    **base,
                    "status": "sent",
                    "reason": None,
                    "code": code,
                    "response": reply[:2000],
                    "message_id": message_id,
                    "sent_at": now,
                },
                (
                    row.contact_id,
                    now,
                    mailing.slug,
                    run_id,
                    subject,
                    batch["language"],
                    row.sp_code,
                    message_id,
                )
                if mailing.activity_log
                else None,
            )
            result.sent += 1
    finally:
        outcomes.flush()
        if connected:
            transport.close()
    result.pending = len(left_pending)
    if left_pending:
        if not final_try:
            raise TransientSendError(
                f"batch {batch_id}: {len(left_pending)} mail(s) left pending after a temporary failure"
                f" ({result.last_error}); they are sent on the retry"
            )
        with engine.begin() as conn:
            conn.execute(
                text(
                    "UPDATE segmail_deliveries SET status = 'failed', reason = :reason, updated_at = :now"
                    " WHERE id IN :ids AND status = 'pending'"
                ).bindparams(*_expanding("ids")),
                {
                    "reason": f"retries exhausted: {result.last_error}",
                    "now": datetime.now(UTC),
                    "ids": left_pending,
                },
            )
        result.failed += len(left_pending)
        result.pending = 0
    return result


# ---------------------------------------------------------------- summary


def summarize_run(run_id: int, *, mailing: Mailing, engine: Engine | None = None) -> dict:
    """Store the run's totals; raise FailureThresholdExceeded when too many mails failed."""
    engine = engine or default_engine()
    totals = run_totals(run_id, engine=engine)
    attempted = totals["sent"] + totals["failed"]
    share = totals["failed"] / attempted if attempted else 0.0
    failed = share > mailing.failure_threshold or totals["pending"] > 0
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE segmail_mailing_runs SET totals = :t, status = :s, finished_at = :now WHERE id = :r"
            ),
            {
                "t": json.dumps(totals),
                "s": "failed" if failed else "succeeded",
                "now": datetime.now(UTC),
                "r": run_id,
            },
        )
    if failed:
        raise FailureThresholdExceeded(
            f"run {run_id}: {totals['failed']} of {attempted} mails failed ({share:.1%}; threshold "
            f"{mailing.failure_threshold:.1%}), {totals['pending']} pending"
        )
    return totals
