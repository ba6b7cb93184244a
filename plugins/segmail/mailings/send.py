"""Sending one batch of a mailing run over the transport's connections.

Exactly-once rests on four things: a delivery row is unique per (run, contact) and created when
the run starts (`audience`); a batch sends only rows still `pending`; every SMTP result is
committed before the next mail's content goes out on the same connection (`send_all`'s `record`
writes each round in one short transaction), so a task killed at any moment leaves at most one
mail per open connection accepted by the server but still `pending` — sent again on the retry,
with the same Message-ID; and nothing is lost, since a row leaves `pending` only when its outcome is
written. SMTP retries are ours: a 4xx or a dropped connection leaves the mail `pending` (with the
server's last code and reply) and the batch raises `TransientSendError` for Airflow's retry with
backoff; on the final try those mails are marked `failed` with "retries exhausted: <last error>"
instead, keeping that code and reply. A 5xx marks the mail `failed` with the server's code and
text. The mailing's rate limit paces the batch; a dry run renders and builds every mail, sends
none, and marks it `skipped` ("dry run: rendered, not sent").

A send window or a cap (`segmail.throttle.gate`) is asked before each mail is taken: when the window
closes or a cap runs out, no further mail is taken, the mails in flight finish and are recorded as
always, the unused reservation goes back, and the result says until when the rest waits
(`wait_until`); those mails simply stay `pending` for the task's resumption.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, TypeVar

from sqlalchemy import Engine

from segmail.mailings.compose import Composed, Composer, RenderFailed, composer_for
from segmail.mailings.definition import Mailing
from segmail.mailings.deliveries import Activity, Batch, DeliveryStore, Outcome, PendingMail
from segmail.mailings.render import CompiledVariant, compiled_variant
from segmail.mailings.transport import (
    Outgoing,
    Result,
    SendError,
    SendErrorKind,
    TransientSendError,
    Transport,
)
from segmail.store.models import ActivityKind, DeliveryStatus
from segmail.throttle.gate import SendGate

DRY_RUN_REASON = "dry run: rendered, not sent"
RECHECK_SECONDS = 0.2
REJECTED_REASON = "rejected by the server"

P = TypeVar("P")  # a mail prepared for sending: a composed e-mail, a rendered SMS
S = TypeVar("S", bound="BatchSender")


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
    waiting: int = 0  # pending mails not taken because the window closed or a cap ran out
    wait_until: datetime | None = None  # when they may go
    wait_reason: str | None = None

    def count(self, outcome: Outcome) -> None:
        if outcome.error is not None:
            self.last_error = outcome.error.summary
        if outcome.status == DeliveryStatus.SENT:
            self.sent += 1
        elif outcome.status == DeliveryStatus.FAILED:
            self.failed += 1
        elif outcome.status == DeliveryStatus.SKIPPED:
            self.skipped += 1

    def hold_back(self, gate: SendGate | None, *, untaken: int) -> None:
        """Note what the gate held back for the window or the budget, and until when: those mails
        stay pending for the task's resumption, so they are neither sent nor retried now."""
        if gate is not None and gate.paused_until is not None:
            self.waiting, self.wait_until, self.wait_reason = untaken, gate.paused_until, gate.reason

    def as_dict(self) -> dict:
        out = {
            k: getattr(self, k) for k in ("batch_id", "sent", "failed", "skipped", "pending", "last_error")
        }
        if self.wait_until is not None:
            out.update(
                waiting=self.waiting, wait_until=self.wait_until.isoformat(), wait_reason=self.wait_reason
            )
        return out


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


class BatchSender(Generic[P]):
    """What the senders of both channels share (this module's e-mail one, segmail.sms.send's):
    the batch's pending messages taken one at a time past the gate and the opt-out recheck, each
    prepared (`P`: a composed mail, a rendered SMS) or recorded at once when it cannot go, and
    what stays unsettled at the end. Pacing and submitting are the channel's."""

    def __init__(
        self,
        batch: Batch,
        mails: list[PendingMail],
        *,
        mailing: Mailing,
        store: DeliveryStore,
        clock: Clock,
        gate: SendGate | None = None,
    ) -> None:
        self.batch = batch
        self.gate = gate
        self.mails = mails
        self.mailing = mailing
        self.store = store
        self.clock = clock
        self.pacer = Pacer(mailing.rate_limit_per_second, clock)
        self.recheck = Recheck(store, batch.id, clock)
        self.result = BatchResult(batch.id)
        self.taken = 0  # mails of `mails` decided or handed on so far
        self.left_pending: list[int] = []

    def taken_mails(
        self, prepare: Callable[[PendingMail], P | Outcome], gate: SendGate | None
    ) -> Iterator[tuple[PendingMail, P]]:
        """Each mail prepared; blocked and unpreparable ones are recorded and passed over. With a
        gate, a mail is taken only once the gate admits it; when it does not, taking stops here."""
        for mail in self.mails:
            if gate is not None and not gate.admit(left=len(self.mails) - self.taken):
                return
            self.taken += 1
            prepared = self.recheck.skip(mail) or prepare(mail)
            if isinstance(prepared, Outcome):
                if gate is not None:
                    gate.unused()
                self._record(prepared)
                continue
            yield mail, prepared

    def unsettled(self) -> list[int]:
        """Mails left pending by their result, or not taken because sending stopped early. Mails the
        gate held back are not unsettled: they wait (`BatchResult.hold_back`)."""
        untaken = [] if self.paused else [mail.id for mail in self.mails[self.taken :]]
        return self.left_pending + untaken

    @property
    def paused(self) -> bool:
        return self.gate is not None and self.gate.paused_until is not None

    def _record(self, outcome: Outcome) -> None:
        self.result.count(outcome)
        self.store.record(outcome)

    def activity(
        self,
        mail: PendingMail,
        now: datetime,
        *,
        subject: str,
        message_id: str | None,
        kind: ActivityKind,
        detail: str | None,
    ) -> Activity:
        """The contact's activity-log row of this mail (callers check `mailing.activity_log` first)."""
        return Activity(
            contact_id=mail.contact_id,
            at=now,
            mailing=self.mailing.slug,
            run=self.batch.run_id,
            subject=subject,
            language=self.batch.language,
            salesperson=mail.sp_code,
            message_id=message_id,
            kind=kind,
            detail=detail,
        )


def send_pending(
    batch_id: int,
    *,
    store: DeliveryStore,
    final_try: bool,
    sender_for: Callable[[Batch, list[PendingMail]], S],
    send: Callable[[S], None],
) -> BatchResult:
    """The frame of sending one batch, for both channels: load its pending mails, `send` them with
    the channel's sender, give the gate back what it reserved and did not use, write what is left
    to write (also when interrupted), note what the gate holds back, and settle what stays pending
    (`settle_pending`)."""
    try:
        batch, mails = store.load_batch(batch_id)
        if not mails:
            return BatchResult(batch_id)
        sender = sender_for(batch, mails)
        try:
            send(sender)
        finally:
            if sender.gate is not None:
                sender.gate.release()  # reserved and not used goes back to the shared budget
            store.flush()  # what sent nothing is written too, also when the batch is interrupted
    finally:
        store.close()
    sender.result.hold_back(sender.gate, untaken=len(mails) - sender.taken)
    settle_pending(sender.result, sender.unsettled(), store=store, final_try=final_try)
    return sender.result


class _BatchSender(BatchSender[Composed]):
    """Turns the pending mails of a batch into what the transport sends, and the transport's
    results into outcomes: compose, pace, and record."""

    def __init__(
        self,
        batch: Batch,
        mails: list[PendingMail],
        *,
        mailing: Mailing,
        composer: Composer,
        store: DeliveryStore,
        clock: Clock,
        gate: SendGate | None = None,
    ) -> None:
        super().__init__(batch, mails, mailing=mailing, store=store, clock=clock, gate=gate)
        self.composer = composer
        self.handed: dict[int, PendingMail] = {}  # handed to the transport, no result yet

    def outgoing(self) -> Iterator[Outgoing]:
        """The mails as the transport pulls them, paced."""
        for mail, composed in self.taken_mails(self._compose, self.gate):
            self.pacer.wait()
            self.handed[mail.id] = mail
            yield Outgoing((mail, composed), composed.envelope_from, mail.email, composed.data, ready=True)

    def dry_run(self) -> None:
        for mail, composed in self.taken_mails(self._compose, None):
            now = self.clock.now()
            self._record(
                Outcome(
                    mail.id,
                    DeliveryStatus.SKIPPED,
                    now,
                    reason=DRY_RUN_REASON,
                    message_id=composed.message_id,
                )
            )

    def record(self, results: list[Result]) -> None:
        """A round of SMTP results, committed before the transport goes on."""
        outcomes = [self._outcome(result) for result in results]
        for outcome in outcomes:
            self.handed.pop(outcome.delivery_id, None)
            self.result.count(outcome)
            if outcome.status == DeliveryStatus.PENDING:
                self.left_pending.append(outcome.delivery_id)
        self.store.write(outcomes)

    def unsettled(self) -> list[int]:
        """Also the mails the transport had asked for and not answered for (a lost connection)."""
        return super().unsettled() + list(self.handed)

    def _compose(self, mail: PendingMail) -> Composed | Outcome:
        now = self.clock.now()
        composed = self.composer.compose_delivery(self.batch.run_id, mail, date=now)
        if isinstance(composed, RenderFailed):
            return Outcome(mail.id, DeliveryStatus.FAILED, now, reason=composed.reason)
        return composed

    def _outcome(self, result: Result) -> Outcome:
        mail, composed = result.mail.key
        now = self.clock.now()
        if result.error is not None:
            return self._rejected(mail, composed, result.error, now)
        return Outcome(
            mail.id,
            DeliveryStatus.SENT,
            now,
            code=result.code,
            response=result.text,
            message_id=composed.message_id,
            sent_at=now,
            activity=self._activity(mail, composed, now),
        )

    def _rejected(self, mail: PendingMail, composed: Composed, error: SendError, now: datetime) -> Outcome:
        """A 4xx or a drop leaves the mail pending (with the server's reply, if it gave one); a 5xx
        fails it, and "no such mailbox" also suppresses the address (a hard bounce said at once)."""
        if error.kind != SendErrorKind.FAILED:
            return Outcome(
                mail.id, DeliveryStatus.PENDING, now, code=error.code, response=error.text, error=error
            )
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
        return self.activity(
            mail, now, subject=composed.subject, message_id=composed.message_id, kind=kind, detail=detail
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
    gate: SendGate | None = None,
) -> BatchResult:
    """Send the pending mails of one batch.

    Raises TransientSendError when mails stay pending (4xx, dropped connection) and this is not the
    final try; on the final try they are marked failed with the last reason instead. With a `gate`
    (`segmail.throttle.gate.gate_for`, as the DAG's task passes it) the send window and the caps
    hold: what they hold back is in the result's `waiting` and `wait_until`, and stays pending.
    """
    store = store or DeliveryStore(engine)

    def sender_for(batch: Batch, mails: list[PendingMail]) -> _BatchSender:
        variant = compiled or compiled_variant(mailing, batch.language)
        return _BatchSender(
            batch,
            mails,
            mailing=mailing,
            composer=composer or composer_for(mailing, variant),
            store=store,
            clock=clock or Clock(),
            gate=None if batch.dry_run else gate,
        )

    def send(sender: _BatchSender) -> None:
        if sender.batch.dry_run:
            sender.dry_run()
        elif _may_start(sender.gate, len(sender.mails)):  # no SMTP connection is opened only to wait
            with transport:
                transport.send_all(sender.outgoing(), sender.record)

    return send_pending(batch_id, store=store, final_try=final_try, sender_for=sender_for, send=send)


def _may_start(gate: SendGate | None, mails: int) -> bool:
    """Whether the window is open and the budget has room for a first mail (its unit is kept for it)."""
    if gate is None:
        return True
    if gate.admit(left=mails):
        gate.unused()
        return True
    return False


def settle_pending(
    result: BatchResult, left_pending: list[int], *, store: DeliveryStore, final_try: bool
) -> None:
    """Mails left pending (by a 4xx, a drop, a busy gateway) make the task retry: raise
    TransientSendError; on its final try they fail instead, with "retries exhausted" and the
    batch's last error. Either way `result.pending` says how many stayed pending."""
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
