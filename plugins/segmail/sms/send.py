"""Sending one batch of an SMS run through the gateway, exactly once per number.

The e-mail rules hold, on the same `DeliveryStore` (segmail.mailings.deliveries): delivery rows are
unique per (run, contact) and frozen with the number when the run starts; a batch sends only rows
still `pending`; and every gateway answer is committed (`store.write`, one short transaction)
before the next message is submitted, so a task killed at any moment leaves at most one message
accepted by the gateway but still `pending` — submitted again on the retry. A row leaves
`pending` only when its outcome is written.

The gateway's answer decides: ACCEPTED marks the row `sent` (a delivery report later makes it
`delivered`, `failed` or `expired`, segmail.sms.reports); REJECTED marks it `failed` with the
gateway's code and reply; TRANSIENT (busy, unreachable) keeps it `pending` with that reply, stops
the batch, and makes the task retry with backoff — on the final try the rest fail with "retries
exhausted". A number opted out while the batch runs is skipped (re-read every RECHECK_SECONDS). A
message longer than the mailing's `max_parts` fails with its length instead of costing more than
allowed. A dry run renders every message and sends none. With a gate (segmail.throttle.gate: the
mailing's send window and caps, the gateway connection's caps) each message is admitted before it
is taken; what the gate holds back stays `pending` and the result says until when it waits.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Engine, text

from segmail.mailings.compose import delivery_recipient
from segmail.mailings.definition import Mailing
from segmail.mailings.deliveries import Activity, Batch, DeliveryStore, Outcome, PendingMail, pending_query
from segmail.mailings.send import DRY_RUN_REASON, BatchResult, BatchSender, Clock, send_pending
from segmail.sms.encoding import SmsLength
from segmail.sms.gateway import SmsGateway, SmsMessage, SmsSubmission, SubmitResult
from segmail.sms.render import CompiledSms, compile_sms, sms_context
from segmail.store.models import ActivityKind, DeliveryStatus
from segmail.throttle.gate import SendGate

REJECTED_REASON = "rejected by the SMS gateway"

_PENDING_SMS = pending_query(mobile="d.mobile_e164")
_BLOCKED_SMS = text(
    "SELECT d.id, NULL AS reason, 1 AS opted_out FROM segmail_deliveries d"
    " WHERE d.batch_id = :b AND d.status = :pending AND EXISTS (SELECT 1 FROM segmail_contacts c"
    "  WHERE c.mobile_e164 = d.mobile_e164 AND c.sms_opt_out = :yes)"
)


class SmsDeliveryStore(DeliveryStore):
    """The e-mail store with the SMS reads: the frozen number, and SMS opt-outs during the run."""

    pending_query = _PENDING_SMS
    blocked_query = _BLOCKED_SMS


ReportUrl = Callable[[int], "str | None"]


def _default_report_url() -> ReportUrl:
    """Signed report URLs on SEGMAIL_PUBLIC_URL (segmail.sms.reports), the settings read once per batch."""
    from segmail.sms.reports import ReportUrls

    return ReportUrls()


class _SmsBatchSender(BatchSender[tuple[str, SmsLength]]):
    """Renders, paces and submits the pending messages of a batch, one committed answer at a time."""

    def __init__(
        self,
        batch: Batch,
        mails: list[PendingMail],
        *,
        mailing: Mailing,
        compiled: CompiledSms,
        store: DeliveryStore,
        clock: Clock,
        report_url: ReportUrl,
        gate: SendGate | None = None,
    ) -> None:
        super().__init__(batch, mails, mailing=mailing, store=store, clock=clock, gate=gate)
        self.compiled, self.report_url = compiled, report_url

    def send_all(self, gateway: SmsGateway | None) -> None:
        """Submit each message (none in a dry run); stops at the first transient answer, and where
        the gate holds the rest back."""
        for mail, prepared in self.taken_mails(self._prepare, self.gate):
            if gateway is None:
                self._record(self._dry_run(mail, prepared))
                continue
            self.pacer.wait()
            outcome = self._submit(gateway, mail, prepared)
            self.result.count(outcome)
            self.store.write([outcome])  # committed before the next message is submitted
            if outcome.status == DeliveryStatus.PENDING:  # not sent: its unit goes back to the budget
                if self.gate is not None:
                    self.gate.unused()
                self.left_pending.append(mail.id)
                return

    def _prepare(self, mail: PendingMail) -> tuple[str, SmsLength] | Outcome:
        """The message's text and length, or the outcome of a message that cannot go."""
        if not mail.mobile_e164:  # the definition became an SMS mailing after this run was frozen
            return self._failed(mail, "no number on this delivery: the run was frozen as an e-mail run")
        recipient = delivery_recipient(mail)
        try:
            message = self.compiled.render(
                sms_context(
                    contact=recipient.contact,
                    segment=recipient.segment,
                    salesperson=recipient.salesperson,
                    mailing=self.mailing,
                )
            )
        except Exception as exc:  # a template error for this contact: fail this one, not the batch
            return self._failed(mail, f"rendering failed: {exc}")
        length, too_long = self.compiled.too_long(message)
        if not message:
            return self._failed(mail, "rendering failed: the message is empty")
        if too_long:
            return self._failed(mail, too_long, parts=length.parts)
        return message, length

    def _failed(self, mail: PendingMail, reason: str, *, parts: int | None = None) -> Outcome:
        return Outcome(mail.id, DeliveryStatus.FAILED, self.clock.now(), reason=reason, parts=parts)

    def _dry_run(self, mail: PendingMail, prepared: tuple[str, SmsLength]) -> Outcome:
        now = self.clock.now()
        return Outcome(mail.id, DeliveryStatus.SKIPPED, now, reason=DRY_RUN_REASON, parts=prepared[1].parts)

    def _submit(self, gateway: SmsGateway, mail: PendingMail, prepared: tuple[str, SmsLength]) -> Outcome:
        message_text, length = prepared
        message = SmsMessage(
            to=mail.mobile_e164,
            sender=self.compiled.sender,
            text=message_text,
            encoding=length.encoding,
            report_url=self.report_url(mail.id),
        )
        try:
            answer = gateway.submit(message)
        except OSError as exc:  # the gateway is unreachable: like a dropped SMTP connection
            answer = SmsSubmission(result=SubmitResult.TRANSIENT, reply=f"{type(exc).__name__}: {exc}")
        return self._outcome(mail, message, length, answer)

    def _outcome(
        self, mail: PendingMail, message: SmsMessage, length: SmsLength, answer: SmsSubmission
    ) -> Outcome:
        now = self.clock.now()
        reply = answer.reply.strip()
        if answer.result == SubmitResult.ACCEPTED:
            return Outcome(
                mail.id,
                DeliveryStatus.SENT,
                now,
                code=answer.code,
                response=reply,
                sent_at=now,
                parts=length.parts,
                activity=self._activity(mail, message, length, now),
            )
        if answer.result == SubmitResult.REJECTED:
            return Outcome(
                mail.id,
                DeliveryStatus.FAILED,
                now,
                reason=f"{REJECTED_REASON}: {answer.code} {reply}".strip(),
                code=answer.code,
                response=reply,
                parts=length.parts,
            )
        # Transient: pending, with the gateway's code and words kept on the row when it gave a code
        # (as for a 4xx; an unreachable gateway says nothing), and as the batch's last error.
        self.result.last_error = f"{answer.code or ''} {reply}".strip() or "the SMS gateway did not answer"
        return Outcome(mail.id, DeliveryStatus.PENDING, now, code=answer.code, response=reply)

    def _activity(
        self, mail: PendingMail, message: SmsMessage, length: SmsLength, now: datetime
    ) -> Activity | None:
        if not self.mailing.activity_log:
            return None
        detail = f"SMS to {message.to} from {message.sender}: {length.describe()}"
        return self.activity(
            mail, now, subject=message.text, message_id=None, kind=ActivityKind.SMS, detail=detail
        )


def send_sms_batch(
    batch_id: int,
    *,
    mailing: Mailing,
    gateway: SmsGateway | None = None,
    open_gateway: Callable[[], SmsGateway] | None = None,
    open_gate: Callable[[], SendGate | None] | None = None,
    final_try: bool = False,
    engine: Engine | None = None,
    compiled: CompiledSms | None = None,
    store: DeliveryStore | None = None,
    clock: Clock | None = None,
    report_url: ReportUrl | None = None,
    gate: SendGate | None = None,
) -> BatchResult:
    """Send the pending messages of one SMS batch.

    Raises TransientSendError when messages stay pending (the gateway was busy or unreachable) and
    this is not the final try; on the final try they are marked failed with the last reply instead.
    What a `gate` holds back is in the result's `waiting` and `wait_until`, and stays pending.
    `open_gateway` and `open_gate` (what the DAG's task passes) are called only when the batch
    really sends: a dry run needs neither the gateway's connection nor its caps.
    """
    store = store or SmsDeliveryStore(engine)

    def sender_for(batch: Batch, mails: list[PendingMail]) -> _SmsBatchSender:
        return _SmsBatchSender(
            batch,
            mails,
            mailing=mailing,
            compiled=compiled or compile_sms(mailing, batch.language),
            store=store,
            clock=clock or Clock(),
            report_url=report_url or (_no_report_url if batch.dry_run else _default_report_url()),
            gate=None if batch.dry_run else (gate if open_gate is None else open_gate()),
        )

    def send(sender: _SmsBatchSender) -> None:
        if sender.batch.dry_run:
            sender.send_all(None)
            return
        opened = gateway if open_gateway is None else open_gateway()
        with opened:
            sender.send_all(opened)

    return send_pending(batch_id, store=store, final_try=final_try, sender_for=sender_for, send=send)


def _no_report_url(delivery_id: int) -> None:
    return None
