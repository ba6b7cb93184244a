"""Sending one batch of a mailing run over one connection.

Exactly-once rests on three things: a delivery row is unique per (run, contact) and created when
the run starts (`audience`); a batch sends only rows still `pending`; and every outcome is written
before the task ends, also when it fails (`DeliveryStore` flushes every few dozen mails and in
`finally`). SMTP retries are ours: a 4xx or a dropped connection leaves the mail `pending` and the
batch raises `TransientSendError` for Airflow's retry with backoff; on the final try those mails are
marked `failed` with "retries exhausted: <last error>" instead. A 5xx marks the mail `failed` with
the server's code and text. The mailing's rate limit paces each connection; a dry run renders and
builds every mail, sends none, and marks it `skipped` ("dry run: rendered, not sent").
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine

from segmail.mailings.compose import Composed, Composer, RenderFailed, composer_for
from segmail.mailings.definition import Mailing
from segmail.mailings.deliveries import Activity, Batch, DeliveryStore, Outcome, PendingMail
from segmail.mailings.render import CompiledVariant, compile_variant
from segmail.mailings.transport import SendError, SendErrorKind, TransientSendError, Transport, classify
from segmail.store.models import ActivityKind, DeliveryStatus

DRY_RUN_REASON = "dry run: rendered, not sent"
RECHECK_SECONDS = 0.2
REJECTED_REASON = "rejected by the server"


class Clock:
    """Time as sending sees it; a fake one makes rate limiting testable without waiting."""

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def now(self) -> datetime:
        return datetime.now(UTC)


class Pacer:
    """At most `per_second` mails per second over one connection (no limit when None)."""

    def __init__(self, per_second: float | None, clock: Clock) -> None:
        self.interval = 1.0 / per_second if per_second else 0.0
        self.clock = clock
        self.next_slot: float | None = None

    def wait(self) -> None:
        if not self.interval:
            return
        now = self.clock.monotonic()
        if self.next_slot is not None and self.next_slot > now:
            self.clock.sleep(self.next_slot - now)
            now = self.clock.monotonic()
        self.next_slot = max(self.next_slot or now, now) + self.interval


@dataclass
class BatchResult:
    batch_id: int
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    pending: int = 0
    last_error: str | None = None

    def count(self, outcome: Outcome) -> None:
        if outcome.error is not None:
            self.last_error = outcome.error.summary
        if outcome.status == DeliveryStatus.SENT:
            self.sent += 1
        elif outcome.status == DeliveryStatus.FAILED:
            self.failed += 1
        elif outcome.status == DeliveryStatus.SKIPPED:
            self.skipped += 1

    def as_dict(self) -> dict:
        return {
            k: getattr(self, k) for k in ("batch_id", "sent", "failed", "skipped", "pending", "last_error")
        }


class Recheck:
    """Opt-outs and suppressions that arrive while a batch is sending are honoured for the mails
    not yet sent: the batch's blocked addresses are re-read before a mail whenever the last look
    is older than RECHECK_SECONDS (one indexed query, not one per mail)."""

    def __init__(self, store: DeliveryStore, batch_id: int, clock: Clock) -> None:
        self.store, self.batch_id, self.clock = store, batch_id, clock
        self.blocked: dict[int, str] = {}
        self.checked_at: float | None = None

    def skip(self, mail: PendingMail) -> Outcome | None:
        now = self.clock.monotonic()
        if self.checked_at is None or now - self.checked_at >= RECHECK_SECONDS:
            self.blocked = self.store.blocked(self.batch_id)
            self.checked_at = now
        reason = self.blocked.get(mail.id)
        if reason is None:
            return None
        return Outcome(mail.id, DeliveryStatus.SKIPPED, self.clock.now(), reason=reason)


class _BatchSender:
    """Turns one pending mail into its `Outcome`: compose, pace, send, classify."""

    def __init__(
        self, batch: Batch, *, mailing: Mailing, composer: Composer, transport: Transport, clock: Clock
    ) -> None:
        self.batch = batch
        self.mailing = mailing
        self.composer = composer
        self.transport = transport
        self.clock = clock
        self.pacer = Pacer(mailing.rate_limit_per_second, clock)

    def deliver(self, mail: PendingMail) -> Outcome:
        now = self.clock.now()
        composed = self.composer.compose_delivery(self.batch.run_id, mail, date=now)
        if isinstance(composed, RenderFailed):
            return Outcome(mail.id, DeliveryStatus.FAILED, now, reason=composed.reason)
        if self.batch.dry_run:
            return Outcome(
                mail.id, DeliveryStatus.SKIPPED, now, reason=DRY_RUN_REASON, message_id=composed.message_id
            )
        self.pacer.wait()
        try:
            code, reply = self.transport.send(composed.envelope_from, mail.email, composed.data)
        except Exception as exc:
            return self._rejected(mail, composed, classify(exc), now)
        return Outcome(
            mail.id,
            DeliveryStatus.SENT,
            now,
            code=code,
            response=reply,
            message_id=composed.message_id,
            sent_at=now,
            activity=self._activity(mail, composed, now),
        )

    def _rejected(self, mail: PendingMail, composed: Composed, error: SendError, now: datetime) -> Outcome:
        """A 4xx or a drop leaves the mail pending; a 5xx fails it, and "no such mailbox" also
        suppresses the address (a hard bounce said at once)."""
        if error.kind != SendErrorKind.FAILED:
            return Outcome(mail.id, DeliveryStatus.PENDING, now, error=error)
        bounced = error.mailbox_unknown
        detail = f"hard bounce at send time: {error.summary}"
        return Outcome(
            mail.id,
            DeliveryStatus.FAILED,
            now,
            reason=REJECTED_REASON,
            code=error.code,
            response=error.text,
            message_id=composed.message_id,
            error=error,
            suppress_address=mail.email if bounced else None,
            activity=self._activity(mail, composed, now, kind=ActivityKind.BOUNCE, detail=detail)
            if bounced
            else None,
        )

    def _activity(
        self,
        mail: PendingMail,
        composed: Composed,
        now: datetime,
        *,
        kind: ActivityKind = ActivityKind.MAILING,
        detail: str | None = None,
    ) -> Activity | None:
        if not self.mailing.activity_log:
            return None
        return Activity(
            contact_id=mail.contact_id,
            at=now,
            mailing=self.mailing.slug,
            run=self.batch.run_id,
            subject=composed.subject,
            language=self.batch.language,
            salesperson=mail.sp_code,
            message_id=composed.message_id,
            kind=kind,
            detail=detail,
        )


def send_batch(
    batch_id: int,
    *,
    mailing: Mailing,
    transport: Transport,
    final_try: bool = False,
    engine: Engine | None = None,
    compiled: CompiledVariant | None = None,
    store: DeliveryStore | None = None,
    clock: Clock | None = None,
    composer: Composer | None = None,
) -> BatchResult:
    """Send the pending mails of one batch over one connection.

    Raises TransientSendError when mails stay pending (4xx, dropped connection) and this is not the
    final try; on the final try they are marked failed with the last reason instead.
    """
    store = store or DeliveryStore(engine)
    batch, mails = store.load_batch(batch_id)
    result = BatchResult(batch_id)
    if not mails:
        return result
    variant = compiled or compile_variant(mailing, batch.language)
    sender = _BatchSender(
        batch,
        mailing=mailing,
        composer=composer or composer_for(mailing, variant),
        transport=transport,
        clock=clock or Clock(),
    )
    left_pending: list[int] = []
    recheck = Recheck(store, batch_id, sender.clock)
    with nullcontext() if batch.dry_run else transport:
        try:
            for index, mail in enumerate(mails):
                outcome = recheck.skip(mail) or sender.deliver(mail)
                result.count(outcome)
                if outcome.status != DeliveryStatus.PENDING:
                    store.record(outcome)
                    continue
                left_pending.append(mail.id)
                if outcome.error.kind == SendErrorKind.DISCONNECTED:  # the rest waits for the retry
                    left_pending.extend(m.id for m in mails[index + 1 :])
                    break
        finally:
            store.flush()
    _settle_pending(result, left_pending, store=store, final_try=final_try)
    return result


def _settle_pending(
    result: BatchResult, left_pending: list[int], *, store: DeliveryStore, final_try: bool
) -> None:
    """Mails left pending make the task retry; on its final try they fail with the last error."""
    result.pending = len(left_pending)
    if not left_pending:
        return
    if not final_try:
        raise TransientSendError(
            f"batch {result.batch_id}: {len(left_pending)} mail(s) left pending after a temporary failure"
            f" ({result.last_error}); they are sent on the retry"
        )
    store.fail_pending(left_pending, reason=f"retries exhausted: {result.last_error}")
    result.failed += len(left_pending)
    result.pending = 0
