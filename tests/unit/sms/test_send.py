"""send_sms_batch over the fake store and the fake gateway: exactly once per number, retries,
rejections, opt-outs during the run, and the length limit — without a database or Kannel."""

from __future__ import annotations

import pytest
from fake_sms_support import FakeSmsGateway, Interrupted, sms_mailing
from segmail.mailings.send import DRY_RUN_REASON
from segmail.mailings.transport import TransientSendError
from segmail.sms.gateway import SmsEncoding
from segmail.sms.render import compile_sms
from segmail.sms.send import send_sms_batch
from segmail.store.models import ActivityKind, DeliveryStatus
from unit.mailings.fakes import FakeClock, FakeStore, pending_mail

PENDING, SENT, FAILED, SKIPPED = (
    DeliveryStatus.PENDING,
    DeliveryStatus.SENT,
    DeliveryStatus.FAILED,
    DeliveryStatus.SKIPPED,
)


def sms(delivery_id: int, **overrides):
    return pending_mail(delivery_id, email=None, mobile_e164=f"+4366412345{delivery_id:02d}", **overrides)


def send(store, gateway, *, final_try=False, clock=None, **mailing_fields):
    mailing = sms_mailing(**mailing_fields)
    return send_sms_batch(
        1,
        mailing=mailing,
        gateway=gateway,
        final_try=final_try,
        compiled=compile_sms(mailing, "en"),
        store=store,
        clock=clock or FakeClock(),
        report_url=lambda delivery_id: f"https://public.example/dlr/{delivery_id}",
    )


def test_every_pending_message_is_submitted_once_with_its_text_sender_and_report_url():
    store = FakeStore([sms(1), sms(2, first_name="Zoë")])
    gateway = FakeSmsGateway()
    result = send(store, gateway)
    assert (result.sent, result.failed, result.pending) == (2, 0, 0)
    assert gateway.numbers == ["+436641234501", "+436641234502"]
    first, second = gateway.accepted
    assert first.text == "Hi First1, your check is due. Reply STOP to opt out"
    assert (first.sender, first.encoding, first.report_url) == (
        "Autohaus",
        SmsEncoding.GSM7,
        "https://public.example/dlr/1",
    )
    assert second.encoding == SmsEncoding.UCS2  # "ë" is not in GSM-7: the whole message is UCS-2
    assert store.status == {1: SENT, 2: SENT}
    assert store.written[1].code == 202 and store.written[1].response == "0: Accepted for delivery"
    assert store.written[1].parts == 1
    assert store.writes == [[1], [2]]  # each answer committed before the next message
    assert [(a.contact_id, a.kind, a.subject) for a in store.activity] == [
        (101, ActivityKind.SMS, first.text),
        (102, ActivityKind.SMS, second.text),
    ]
    assert store.activity[0].detail == "SMS to +436641234501 from Autohaus: GSM-7, 51 characters, 1 part"
    assert (gateway.opened, gateway.closed) == (1, 1)


def test_a_rejected_message_fails_with_the_gateways_code_and_reply_and_the_batch_goes_on():
    store = FakeStore([sms(1), sms(2), sms(3)])
    gateway = FakeSmsGateway()
    gateway.reject("+436641234502", 403, "Not routable. Do not try again.")
    result = send(store, gateway)
    assert (result.sent, result.failed) == (2, 1)
    assert store.status == {1: SENT, 2: FAILED, 3: SENT}
    failed = store.written[2]
    assert (failed.code, failed.response) == (403, "Not routable. Do not try again.")
    assert failed.reason == "rejected by the SMS gateway: 403 Not routable. Do not try again."
    assert [a.contact_id for a in store.activity] == [101, 103]


def test_a_busy_gateway_stops_the_batch_and_the_retry_sends_only_the_rest():
    store = FakeStore([sms(1), sms(2), sms(3)])
    gateway = FakeSmsGateway()
    gateway.busy("+436641234502")
    with pytest.raises(TransientSendError, match="2 mail"):
        send(store, gateway)
    assert store.status == {1: SENT, 2: PENDING, 3: PENDING}
    assert store.replies[2] == (503, "Temporal failure, try again later.")
    assert gateway.numbers == ["+436641234501"]  # 3 was not tried against a busy gateway

    gateway.answers.clear()
    result = send(store, gateway)
    assert (result.sent, result.pending) == (2, 0)
    assert gateway.numbers == ["+436641234501", "+436641234502", "+436641234503"]  # each number once


def test_an_unreachable_gateway_on_the_final_try_fails_the_rest_with_its_error():
    store = FakeStore([sms(1), sms(2)])
    gateway = FakeSmsGateway(answers={"+436641234501": ConnectionRefusedError(111, "Connection refused")})
    result = send(store, gateway, final_try=True)
    assert (result.failed, result.pending) == (2, 0)
    assert store.status == {1: FAILED, 2: FAILED}
    assert store.failed_reasons[1] == (
        "retries exhausted: ConnectionRefusedError: [Errno 111] Connection refused"
    )
    assert 1 not in store.replies  # no code from the gateway: nothing to keep on the row


def test_a_task_killed_mid_batch_resends_at_most_the_one_unanswered_message():
    """Killed after the gateway accepted the 3rd message but before its answer was committed: the
    retry submits that one again (the bound stated in segmail.sms.send) and every other number once."""
    mails = [sms(i) for i in range(1, 7)]
    store = FakeStore(mails)
    gateway = FakeSmsGateway(interrupt_after=3)
    with pytest.raises(Interrupted):
        send(store, gateway)
    assert store.status == {1: SENT, 2: SENT, 3: PENDING, 4: PENDING, 5: PENDING, 6: PENDING}
    result = send(store, gateway)
    assert result.sent == 4
    numbers = gateway.numbers
    assert sorted(set(numbers)) == [m.mobile_e164 for m in mails]
    assert [n for n in set(numbers) if numbers.count(n) > 1] == ["+436641234503"]
    assert set(store.status.values()) == {SENT}


def test_a_task_killed_between_messages_sends_no_number_twice():
    mails = [sms(i) for i in range(1, 5)]
    store = FakeStore(mails)
    gateway = FakeSmsGateway()
    original_write = store.write

    def die_after_second_commit(outcomes):
        original_write(outcomes)
        if len(store.writes) == 2:
            raise Interrupted("killed right after a commit")

    store.write = die_after_second_commit
    with pytest.raises(Interrupted):
        send(store, gateway)
    store.write = original_write
    send(store, gateway)
    assert gateway.numbers == [m.mobile_e164 for m in mails]  # each exactly once


def test_a_number_opted_out_during_the_run_is_skipped():
    store = FakeStore([sms(1), sms(2)], blocked_now={2: "opted out during the run"})
    gateway = FakeSmsGateway()
    result = send(store, gateway)
    assert (result.sent, result.skipped) == (1, 1)
    assert store.written[2].reason == "opted out during the run"
    assert gateway.numbers == ["+436641234501"]


def test_a_message_above_max_parts_fails_with_its_length_and_is_not_sent():
    store = FakeStore([sms(1), sms(2, first_name="A" * 200)])
    gateway = FakeSmsGateway()
    result = send(store, gateway, max_parts=1)
    assert (result.sent, result.failed) == (1, 1)
    assert store.written[2].reason == "too long: GSM-7, 245 characters, 2 parts, more than max_parts=1"
    assert gateway.numbers == ["+436641234501"]


def test_a_template_error_fails_that_message_only():
    store = FakeStore([sms(1), sms(2)])
    gateway = FakeSmsGateway()
    mailing = sms_mailing(
        variants={"en": {"text": "Hi {{ contact.first_name | upper }}{{ 1 / (contact.id or 0) }}"}}
    )
    result = send_sms_batch(
        1,
        mailing=mailing,
        gateway=gateway,
        compiled=compile_sms(mailing, "en"),
        store=store,
        clock=FakeClock(),
        report_url=lambda _: None,
    )
    assert result.failed == 2 and gateway.accepted == []
    assert store.written[1].reason.startswith("rendering failed: ")


def test_a_dry_run_renders_every_message_and_submits_none():
    store = FakeStore([sms(1), sms(2)], dry_run=True)
    gateway = FakeSmsGateway()
    result = send(store, gateway)
    assert result.skipped == 2 and gateway.submitted == [] and gateway.opened == 0
    assert {o.reason for o in store.written.values()} == {DRY_RUN_REASON}
    assert store.activity == []


def test_the_rate_limit_paces_submissions():
    store = FakeStore([sms(i) for i in range(1, 5)])
    clock = FakeClock()
    send(store, FakeSmsGateway(), clock=clock, rate_limit_per_second=2)
    assert clock.sleeps == [0.5, 0.5, 0.5]


def test_no_activity_line_when_the_mailing_keeps_no_activity_log():
    store = FakeStore([sms(1)])
    send(store, FakeSmsGateway(), activity_log=False)
    assert store.status == {1: SENT} and store.activity == []


class GateClock:
    def __init__(self, now):
        self.at = now

    def now(self):
        return self.at


def window_gate(clock):
    from zoneinfo import ZoneInfo

    from segmail.throttle.gate import SendGate
    from segmail.throttle.window import SendWindow

    return SendGate(
        caps=[],
        window=SendWindow(days=["mon-fri"], start="08:00", end="18:00"),
        tz=ZoneInfo("Europe/Vienna"),
        budget=None,
        clock=clock,
        chunk=5,
    )


def send_gated(store, gateway, gate):
    mailing = sms_mailing()
    return send_sms_batch(
        1,
        mailing=mailing,
        gateway=gateway,
        compiled=compile_sms(mailing, "en"),
        store=store,
        clock=FakeClock(),
        report_url=lambda _: None,
        gate=gate,
    )


def test_outside_the_send_window_nothing_is_submitted_and_the_batch_waits():
    from datetime import UTC, datetime

    clock = GateClock(datetime(2026, 3, 7, 11, tzinfo=UTC))  # Saturday noon in Vienna
    store = FakeStore([sms(1), sms(2)])
    gateway = FakeSmsGateway()
    result = send_gated(store, gateway, window_gate(clock))  # no TransientSendError: it waits
    assert gateway.submitted == [] and store.status == {1: PENDING, 2: PENDING}
    assert (result.waiting, result.pending) == (2, 0)
    assert result.wait_until == datetime(2026, 3, 9, 7, tzinfo=UTC)  # Monday 08:00 in Vienna
    assert result.as_dict()["wait_reason"] == "outside the send window (Mon–Fri 08:00–18:00 Europe/Vienna)"


def test_when_the_window_closes_mid_batch_the_rest_waits_and_is_sent_later():
    from datetime import UTC, datetime

    clock = GateClock(datetime(2026, 3, 2, 16, 59, tzinfo=UTC))  # Monday 17:59 in Vienna
    store = FakeStore([sms(1), sms(2), sms(3)])
    gateway = FakeSmsGateway()
    original = gateway.submit

    def submit_then_close_the_window(message):
        answer = original(message)
        clock.at = datetime(2026, 3, 2, 17, tzinfo=UTC)  # 18:00
        return answer

    gateway.submit = submit_then_close_the_window
    result = send_gated(store, gateway, window_gate(clock))
    assert gateway.numbers == ["+436641234501"]
    assert (result.sent, result.waiting) == (1, 2) and store.status == {1: SENT, 2: PENDING, 3: PENDING}
    clock.at = datetime(2026, 3, 3, 7, tzinfo=UTC)  # Tuesday 08:00: the resumed task sends the rest
    result = send_gated(store, gateway, window_gate(clock))
    assert (result.sent, result.waiting) == (2, 0)
    assert gateway.numbers == ["+436641234501", "+436641234502", "+436641234503"]


def test_a_delivery_without_a_number_fails_instead_of_reaching_the_gateway():
    store = FakeStore([sms(1), pending_mail(2, mobile_e164=None)])  # a row frozen by an e-mail run
    gateway = FakeSmsGateway()
    result = send(store, gateway)
    assert (result.sent, result.failed) == (1, 1) and gateway.numbers == ["+436641234501"]
    assert store.written[2].reason == "no number on this delivery: the run was frozen as an e-mail run"
