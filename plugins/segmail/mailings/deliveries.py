"""Where sending meets the database: batch planning and every SQL statement of sending a batch.

A batch holds pending deliveries of one language; planning is done once per run (a second call
returns the same batches). `DeliveryStore` loads a batch's `pending` rows and only ever moves a row
away from `pending`, so an outcome written twice changes nothing.

Durability is what bounds the crash window: `write` stores a round of SMTP results in one short
transaction on a connection held for the batch and returns only once it is committed, and the
transport writes no later mail's content on a connection before that (`transport.send_all`). On
PostgreSQL the transaction runs with `SET LOCAL synchronous_commit = off`: a commit the server has
acknowledged survives any crash of the client (only a crash of the database server itself could
lose its last fraction of a second). On SQLite a committed WAL transaction survives the process.
Outcomes that sent nothing (skipped, not renderable, dry run) are buffered and go with the next
write or `flush`: losing them in a crash only means the retry decides them again.
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypedDict

from sqlalchemy import Connection, Engine, TextClause, bindparam, text

from segmail.addresses import email_key
from segmail.mailings.transport import SendError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None
from segmail.store.db import default_engine, is_postgres
from segmail.store.models import ActivityKind, DeliveryStatus, OptOutSource, RunStatus

OPTED_OUT_DURING_RUN = "opted out during the run"
MAX_BATCHES = 1000  # stays under Airflow's [core] max_map_length of 1024
FLUSH_EVERY = 50
FLUSH_SECONDS = 1.0

# ---------------------------------------------------------------- types


class BatchRef(TypedDict):
    """A planned batch as it crosses XCom to the mapped send tasks."""

    batch_id: int
    label: str
    size: int


@dataclass(frozen=True)
class PlannedBatch:
    language: str
    delivery_ids: tuple[int, ...]


@dataclass(frozen=True)
class Batch:
    id: int
    run_id: int
    mailing: str
    language: str
    dry_run: bool


@dataclass(frozen=True)
class PendingMail:
    """A delivery still to send, with what its template may show of the contact."""

    id: int
    contact_id: int
    email: str
    first_name: str
    last_name: str
    organization: str | None = None
    account_number: str | None = None
    country_code: str = ""
    external_id: str | None = None
    language: str | None = None
    mobile_e164: str | None = None
    segment: str | None = None
    sp_code: str | None = None
    sp_name: str | None = None
    sp_email: str | None = None


_PENDING_FIELDS = tuple(PendingMail.__dataclass_fields__)


@dataclass(frozen=True)
class Activity:
    """The line a sent mail leaves in the contact's activity log."""

    contact_id: int
    at: datetime
    mailing: str
    run: int
    subject: str
    language: str
    salesperson: str | None
    message_id: str
    kind: ActivityKind = ActivityKind.MAILING
    detail: str | None = None


@dataclass(frozen=True)
class Outcome:
    """What became of one mail. `PENDING` means nothing is written: the mail waits for the retry."""

    delivery_id: int
    status: DeliveryStatus
    at: datetime
    reason: str | None = None
    code: int | None = None
    response: str | None = None
    message_id: str | None = None
    sent_at: datetime | None = None
    activity: Activity | None = None
    error: SendError | None = None  # why sending failed, when it did
    suppress_address: str | None = None  # a synchronous hard bounce: never mail this address again
    parts: int | None = None  # an SMS: the parts it was sent in

    def as_params(self) -> dict:
        return {
            "id": self.delivery_id,
            "status": self.status,
            "reason": self.reason,
            "code": self.code,
            "response": self.response[:2000] if self.response is not None else None,
            "message_id": self.message_id,
            "sent_at": self.sent_at,
            "parts": self.parts,
            "now": self.at,
            "pending": DeliveryStatus.PENDING,
        }


# ---------------------------------------------------------------- planning


def split_batches(
    pending: Iterable[tuple[str, int]], *, batch_size: int, max_batches: int = MAX_BATCHES
) -> list[PlannedBatch]:
    """(language, delivery id) pairs as batches: languages in sorted order, ids ascending, and the
    size doubled as often as needed so a run never maps more than `max_batches` tasks. (For
    `batched_rows` the "ids" are the rows' positions, in the order the rows take their ids.)"""
    by_language: dict[str, list[int]] = defaultdict(list)
    for language, delivery_id in pending:
        by_language[language].append(delivery_id)
    size = batch_size
    while sum(-(-len(ids) // size) for ids in by_language.values()) > max_batches:
        size *= 2
    batches = []
    for language in sorted(by_language):
        ids = sorted(by_language[language])
        batches += [PlannedBatch(language, tuple(ids[i : i + size])) for i in range(0, len(ids), size)]
    return batches


def plan_batches(run_id: int, *, batch_size: int, engine: Engine | None = None) -> list[BatchRef]:
    """Split pending deliveries into batches per language, unless the freeze planned them already
    (`batched_rows`); the same answer on every call."""
    engine = engine or default_engine()
    with engine.begin() as conn:
        if not _batches(conn, run_id):
            pending = conn.execute(
                text(
                    "SELECT language, id FROM segmail_deliveries WHERE mailing_run_id = :r AND status = :pending"
                    " ORDER BY language, id"
                ),
                {"r": run_id, "pending": DeliveryStatus.PENDING},
            ).all()
            for batch_no, planned in enumerate(split_batches(pending, batch_size=batch_size), start=1):
                _assign_batch(conn, run_id, _insert_batch(conn, run_id, batch_no, planned), planned)
        conn.execute(
            # A run rejected at approval stays rejected (its mails are skipped: there is nothing to plan).
            text("UPDATE segmail_mailing_runs SET status = :sending WHERE id = :r AND status = :frozen"),
            {"r": run_id, "sending": RunStatus.SENDING, "frozen": RunStatus.FROZEN},
        )
        return _batches(conn, run_id)


def batched_rows(
    conn: Connection, run_id: int, columns: tuple[str, ...], rows: list[tuple], *, batch_size: int
) -> tuple[tuple[str, ...], list[tuple]]:
    """Batches planned while a run is frozen, for a run that nothing narrows before it is sent (no
    approval): the batches of the delivery rows about to be inserted, split as `plan_batches` splits
    (rows take ascending ids in their order), and the rows with their batch's id. Setting batch ids
    afterwards rewrote every delivery (on PostgreSQL 28 µs a mail: a new version of the row in every
    index, and the batch's foreign key checked)."""
    language, status = columns.index("language"), columns.index("status")
    pending = [(row[language], at) for at, row in enumerate(rows) if row[status] == DeliveryStatus.PENDING]
    batch_of: list[int | None] = [None] * len(rows)
    for batch_no, planned in enumerate(split_batches(pending, batch_size=batch_size), start=1):
        batch_id = _insert_batch(conn, run_id, batch_no, planned)
        for at in planned.delivery_ids:
            batch_of[at] = batch_id
    return (*columns, "batch_id"), [(*row, batch) for row, batch in zip(rows, batch_of, strict=True)]


def _insert_batch(conn: Connection, run_id: int, batch_no: int, planned: PlannedBatch) -> int:
    return conn.execute(
        text(
            "INSERT INTO segmail_delivery_batches (mailing_run_id, batch_no, language, size)"
            " VALUES (:r, :n, :l, :s) RETURNING id"
        ),
        {"r": run_id, "n": batch_no, "l": planned.language, "s": len(planned.delivery_ids)},
    ).scalar_one()


def _assign_batch(conn: Connection, run_id: int, batch_id: int, planned: PlannedBatch) -> None:
    ids = planned.delivery_ids
    conn.execute(
        # The batch's rows are found by their id range: with `+` the run's (run, contact) index is no
        # candidate, which SQLite otherwise scanned whole for every batch (100,000 mails: 1.6 s).
        text(
            "UPDATE segmail_deliveries SET batch_id = :b WHERE id BETWEEN :lo AND :hi"
            " AND +mailing_run_id = :r AND language = :l AND status = :pending"
        ),
        {
            "b": batch_id,
            "r": run_id,
            "l": planned.language,
            "lo": ids[0],
            "hi": ids[-1],
            "pending": DeliveryStatus.PENDING,
        },
    )


def _batches(conn: Connection, run_id: int) -> list[BatchRef]:
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


# ---------------------------------------------------------------- sending

_BATCH = text(
    "SELECT b.id, b.language, b.mailing_run_id, r.mailing, r.dry_run FROM segmail_delivery_batches b"
    " JOIN segmail_mailing_runs r ON r.id = b.mailing_run_id WHERE b.id = :b"
)


def pending_query(*, mobile: str = "c.mobile_e164") -> TextClause:
    """The pending mails of a batch (`:b`, `:pending`) with what rendering needs of contact, segment
    and salesperson. `mobile` is where the number comes from: the contact's (what an e-mail may
    show), or the number frozen on the delivery (what an SMS goes to, segmail.sms.send)."""
    return text(
        "SELECT d.id, d.contact_id, d.email, c.first_name, c.last_name, c.organization, c.account_number,"
        f" c.country_code, c.external_id, c.language, {mobile}, g.name AS segment,"
        " COALESCE(sp.code, gsp.code) AS sp_code, COALESCE(sp.name, gsp.name) AS sp_name,"
        " COALESCE(sp.email, gsp.email) AS sp_email"
        " FROM segmail_deliveries d JOIN segmail_contacts c ON c.id = d.contact_id"
        " LEFT JOIN segmail_segments g ON g.id = d.segment_id"
        " LEFT JOIN segmail_salespeople sp ON sp.code = c.salesperson_code"
        " LEFT JOIN segmail_salespeople gsp ON gsp.id = g.salesperson_id"
        " WHERE d.batch_id = :b AND d.status = :pending ORDER BY d.id"
    )


_PENDING_MAILS = pending_query()
_WRITE_OUTCOME = text(
    "UPDATE segmail_deliveries SET status = :status, reason = :reason, smtp_code = :code,"
    " smtp_response = :response, message_id = :message_id, sent_at = :sent_at, sms_parts = :parts,"
    " attempts = attempts + 1, updated_at = :now WHERE id = :id AND status = :pending"
)
_WRITE_ACTIVITY = text(
    "INSERT INTO segmail_activity_log (contact_id, occurred_at, kind, mailing, mailing_run_id,"
    " subject, language, salesperson_code, message_id, detail)"
    " VALUES (:contact_id, :at, :kind, :mailing, :run, :subject, :language, :salesperson,"
    " :message_id, :detail) ON CONFLICT (mailing_run_id, contact_id, kind) DO NOTHING"
)
_BLOCKED = text(
    "SELECT d.id, s.reason, MAX(CASE WHEN c.email_opt_out THEN 1 ELSE 0 END) AS opted_out"
    " FROM segmail_deliveries d"
    " LEFT JOIN segmail_suppressions s ON s.address_key = LOWER(d.email)"
    " LEFT JOIN segmail_contacts c ON c.email_key = LOWER(d.email) AND c.email_opt_out = :yes"
    " WHERE d.batch_id = :b AND d.status = :pending AND (s.id IS NOT NULL OR c.id IS NOT NULL)"
    " GROUP BY d.id, s.reason"
)
_SUPPRESS = text(
    "INSERT INTO segmail_suppressions (address_key, reason, source, mailing_run_id, created_at)"
    " VALUES (:key, :reason, :source, :run, :at) ON CONFLICT (address_key) DO NOTHING"
)
_FAIL_PENDING = text(
    "UPDATE segmail_deliveries SET status = :failed, reason = :reason, updated_at = :now"
    " WHERE id IN :ids AND status = :pending"
).bindparams(bindparam("ids", expanding=True))

_WRITE_REPLY = text(
    "UPDATE segmail_deliveries SET smtp_code = :code, smtp_response = :response, updated_at = :now"
    " WHERE id = :id AND status = :pending"
)


# One round of outcomes on PostgreSQL in one statement (one round trip, atomic): the rows of
# _WRITE_OUTCOME, _WRITE_REPLY, _WRITE_ACTIVITY and _SUPPRESS as arrays, with their semantics.
_WRITE_ROUND_PG = text(
    "WITH o AS (SELECT * FROM unnest(CAST(:o_id AS integer[]), CAST(:o_status AS text[]),"
    " CAST(:o_reason AS text[]), CAST(:o_code AS integer[]), CAST(:o_response AS text[]),"
    " CAST(:o_message_id AS text[]), CAST(:o_sent_at AS timestamptz[]), CAST(:o_parts AS integer[]),"
    " CAST(:o_now AS timestamptz[])) AS o(id, status, reason, code, response, message_id, sent_at, parts, now)),"
    " done AS (UPDATE segmail_deliveries d SET status = o.status, reason = o.reason, smtp_code = o.code,"
    " smtp_response = o.response, message_id = o.message_id, sent_at = o.sent_at, sms_parts = o.parts,"
    " attempts = d.attempts + 1,"
    " updated_at = o.now FROM o WHERE d.id = o.id AND d.status = :pending RETURNING d.id),"
    " r AS (SELECT * FROM unnest(CAST(:r_id AS integer[]), CAST(:r_code AS integer[]),"
    " CAST(:r_response AS text[]), CAST(:r_now AS timestamptz[])) AS r(id, code, response, now)),"
    " replied AS (UPDATE segmail_deliveries d SET smtp_code = r.code, smtp_response = r.response,"
    " updated_at = r.now FROM r WHERE d.id = r.id AND d.status = :pending RETURNING d.id),"
    " logged AS (INSERT INTO segmail_activity_log (contact_id, occurred_at, kind, mailing, mailing_run_id,"
    " subject, language, salesperson_code, message_id, detail) SELECT * FROM unnest(CAST(:a_contact_id AS integer[]),"
    " CAST(:a_at AS timestamptz[]), CAST(:a_kind AS text[]), CAST(:a_mailing AS text[]), CAST(:a_run AS integer[]),"
    " CAST(:a_subject AS text[]), CAST(:a_language AS text[]), CAST(:a_salesperson AS text[]),"
    " CAST(:a_message_id AS text[]), CAST(:a_detail AS text[]))"
    " ON CONFLICT (mailing_run_id, contact_id, kind) DO NOTHING RETURNING id),"
    " suppressed AS (INSERT INTO segmail_suppressions (address_key, reason, source, mailing_run_id, created_at)"
    " SELECT * FROM unnest(CAST(:s_key AS text[]), CAST(:s_reason AS text[]), CAST(:s_source AS text[]),"
    " CAST(:s_run AS integer[]), CAST(:s_at AS timestamptz[])) ON CONFLICT (address_key) DO NOTHING RETURNING id)"
    " SELECT (SELECT COUNT(*) FROM done), (SELECT COUNT(*) FROM replied), (SELECT COUNT(*) FROM logged),"
    " (SELECT COUNT(*) FROM suppressed)"
)
_ROUND_COLUMNS = (  # (array prefix, the keys of a row of that statement)
    ("o", ("id", "status", "reason", "code", "response", "message_id", "sent_at", "parts", "now")),
    ("r", ("id", "code", "response", "now")),
    (
        "a",
        (
            "contact_id",
            "at",
            "kind",
            "mailing",
            "run",
            "subject",
            "language",
            "salesperson",
            "message_id",
            "detail",
        ),
    ),
    ("s", ("key", "reason", "source", "run", "at")),
)


class _BatchConnection:
    """One database connection held for a batch, used through its driver: reads are plain
    autocommit SELECTs (on SQLite no transaction, so they never take the write lock), a write is
    one short transaction, committed on return — on PostgreSQL one statement (_WRITE_ROUND_PG, the
    session with synchronous_commit off), on SQLite the four statements under BEGIN IMMEDIATE."""

    STATEMENTS = (_WRITE_OUTCOME, _WRITE_REPLY, _WRITE_ACTIVITY, _SUPPRESS)

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.postgres = is_postgres(engine)
        self.proxy = engine.raw_connection()
        self.db = self.proxy.driver_connection
        if self.postgres:
            self.round_sql = self.sql(_WRITE_ROUND_PG)
            self.db.autocommit = True
            self.db.execute("SET synchronous_commit = off")  # safe against a crash of this process
            # The round statement is planned once: left to choose, PostgreSQL planned it again at
            # every execution (0.7 ms of a round's 1.5 ms), as its custom plans looked cheaper.
            self.db.execute("SET plan_cache_mode = force_generic_plan")
        else:
            self.statements = [self.sql(stmt) for stmt in self.STATEMENTS]
            self.queue = WriterQueue(engine.url.database)

    def sql(self, stmt: TextClause) -> str:
        """The statement in the driver's parameter style."""
        return str(stmt.compile(dialect=self.engine.dialect)) if self.postgres else stmt.text

    def query(self, stmt: TextClause, params: dict) -> tuple[tuple[str, ...], list[tuple]]:
        cursor = self.db.cursor()
        try:
            cursor.execute(self.sql(stmt), params)
            return tuple(column[0] for column in cursor.description), cursor.fetchall()
        finally:
            cursor.close()

    def write(self, rows: list[list[dict]]) -> None:
        """`rows[i]` for STATEMENTS[i], in one transaction, committed on return."""
        if self.postgres:
            params = {"pending": DeliveryStatus.PENDING}
            for (prefix, keys), group in zip(_ROUND_COLUMNS, rows, strict=True):
                params.update({f"{prefix}_{key}": [row[key] for row in group] for key in keys})
            self.db.execute(self.round_sql, params)
            return
        with self.queue:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                for sql, params in zip(self.statements, rows, strict=True):
                    if params:
                        self.db.executemany(sql, params)
                self.db.execute("COMMIT")
            except BaseException:
                if self.db.in_transaction:
                    self.db.execute("ROLLBACK")
                raise

    def close(self) -> None:
        """Give the connection back to the pool as it was lent."""
        try:
            if self.postgres:
                self.db.execute("RESET synchronous_commit")
                self.db.execute("RESET plan_cache_mode")
                self.db.autocommit = False
            else:
                self.queue.close()
        except Exception:  # a broken connection is not given back
            self.proxy.invalidate()
        self.proxy.close()


class WriterQueue:
    """Send tasks on one SQLite file take turns at writing through an OS file lock beside it, so a
    waiting writer starts the moment the other commits, instead of in SQLite's busy handler, which
    sleeps 1 ms and more between looks. Other writers are unaffected (they still meet SQLite's own
    lock); without `fcntl` (Windows) or for an in-memory database this does nothing."""

    def __init__(self, database: str | None) -> None:
        self.fd: int | None = None
        if fcntl is not None and database and database != ":memory:" and not database.startswith("file:"):
            self.fd = os.open(f"{database}-segmail-writers", os.O_CREAT | os.O_RDWR, 0o644)

    def __enter__(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_EX)

    def __exit__(self, *exc_info: object) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class DeliveryStore:
    """The deliveries of one batch: its pending rows in, its outcomes out.

    `write` stores outcomes (with whatever is buffered) and returns once they are committed;
    `record` only buffers (outcomes that sent nothing), written every `flush_every` outcomes or
    `flush_seconds`, with the next `write`, and by `flush()`. `close()` gives the connection back.
    The two queries that know the channel are attributes: `segmail.sms.send.SmsDeliveryStore` reads
    the frozen number instead of the address and SMS opt-outs instead of e-mail ones.
    """

    pending_query: TextClause = _PENDING_MAILS
    blocked_query: TextClause = _BLOCKED

    def __init__(
        self,
        engine: Engine | None = None,
        *,
        flush_every: int = FLUSH_EVERY,
        flush_seconds: float = FLUSH_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine or default_engine()
        self.flush_every = flush_every
        self.flush_seconds = flush_seconds
        self._monotonic = monotonic
        self._rows: list[list[dict]] = [[] for _ in _BatchConnection.STATEMENTS]
        self._buffered = 0
        self._connection: _BatchConnection | None = None
        self._run_id: int | None = None
        self._last_flush = monotonic()

    @property
    def _db(self) -> _BatchConnection:
        if self._connection is None:
            self._connection = _BatchConnection(self.engine)
        return self._connection

    def load_batch(self, batch_id: int) -> tuple[Batch, list[PendingMail]]:
        (b,) = self._db.query(_BATCH, {"b": batch_id})[1]
        batch = Batch(b[0], b[2], b[3], b[1], bool(b[4]))
        self._run_id = batch.run_id
        names, rows = self._db.query(self.pending_query, {"b": batch_id, "pending": DeliveryStatus.PENDING})
        if names == _PENDING_FIELDS:
            return batch, [PendingMail(*row) for row in rows]
        return batch, [PendingMail(**dict(zip(names, row, strict=True))) for row in rows]

    def blocked(self, batch_id: int) -> dict[int, str]:
        """Pending mails of the batch whose address opted out or was suppressed after the freeze."""
        _, rows = self._db.query(
            self.blocked_query, {"b": batch_id, "pending": DeliveryStatus.PENDING, "yes": True}
        )
        return {
            delivery_id: OPTED_OUT_DURING_RUN if opted_out else f"suppressed during the run: {reason}"
            for delivery_id, reason, opted_out in rows
        }

    def record(self, outcome: Outcome) -> None:
        """Buffer an outcome that sent nothing; write the buffer when it is due."""
        self._add(outcome)
        due = self._monotonic() - self._last_flush > self.flush_seconds
        if self._buffered >= self.flush_every or due:
            self.flush()

    def write(self, outcomes: list[Outcome]) -> None:
        """Store these outcomes, and what is buffered, in one transaction; committed on return.
        A pending outcome (a 4xx, a drop) keeps the server's last code and reply on its row."""
        for outcome in outcomes:
            self._add(outcome)
        self.flush()

    def flush(self) -> None:
        if not self._buffered:
            return
        self._db.write(self._rows)
        self._rows = [[] for _ in _BatchConnection.STATEMENTS]
        self._buffered = 0
        self._last_flush = self._monotonic()

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _add(self, outcome: Outcome) -> None:
        outcomes, replies, activity, suppressions = self._rows
        if outcome.status == DeliveryStatus.PENDING:
            if outcome.code is None:  # a drop says nothing: the last reply stays
                return
            replies.append(outcome.as_params())
        else:
            outcomes.append(outcome.as_params())
        self._buffered += 1
        if outcome.activity is not None:
            activity.append(dict(vars(outcome.activity)))
        if outcome.suppress_address is not None:
            suppressions.append(self._suppression(outcome))

    def _suppression(self, outcome: Outcome) -> dict:
        reason = outcome.error.summary if outcome.error else outcome.reason
        return {
            "key": email_key(outcome.suppress_address),
            "reason": f"hard bounce: {reason}"[:2000],
            "source": OptOutSource.SMTP_REJECTION,
            "run": self._run_id,
            "at": outcome.at,
        }

    def fail_pending(self, delivery_ids: list[int], *, reason: str) -> None:
        """Mark mails that are still pending failed (retries exhausted); their last SMTP code and
        reply stay in smtp_code and smtp_response."""
        with self.engine.begin() as conn:
            conn.execute(
                _FAIL_PENDING,
                {
                    "reason": reason,
                    "now": datetime.now(UTC),
                    "ids": delivery_ids,
                    "failed": DeliveryStatus.FAILED,
                    "pending": DeliveryStatus.PENDING,
                },
            )
