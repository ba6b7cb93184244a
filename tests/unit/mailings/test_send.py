"""send_batch over a fake store and a fake transport: the exactly-once rules without a database or
an SMTP server (tests/integration/mailings/test_send.py runs the same rules against real ones)."""

from __future__ import annotations

from email import message_from_bytes, policy

import pytest
from segmail.mailings.send import DRY_RUN_REASON, send_batch
from segmail.mailings.transport import TransientSendError
from segmail.store.models import DeliveryStatus
from unit.mailings.fakes import FakeClock, FakeStore, FakeTransport, mailing, pending_mail, variant

PENDING, SENT, FAILED, SKIPPED = (
    DeliveryStatus.PENDING,
    DeliveryStatus.SENT,
    DeliveryStatus.FAILED,
    DeliveryStatus.SKIPPED,
)


def send(store, transport, *, final_try=False, clock=None, compiled=None, **mailing_fields):
    return send_batch(
        1,
        mailing=mailing(**mailing_fields),
        transport=transport,
        final_try=final_try,
        compiled=compiled or variant(),
        store=store,
        clock=clock or FakeClock(),
    )


def test_every_pending_mail_is_sent_once_with_its_message_id_and_activity_line():
    store = FakeStore([pending_mail(1), pending_mail(2)])
    transport = FakeTransport()
    result = send(store, transport)
    assert (result.sent, result.failed, result.pending) == (2, 0, 0)
    assert transport.recipients == ["c1@example.com", "c2@example.com"]
    assert (transport.opened, transport.closed) == (1, 1)
    assert store.status == {1: SENT, 2: SENT}
    assert store.written[1].message_id == "<segmail.7.101@shop.example>"  # run 7, contact 101
    message = message_from_bytes(transport.sent[0][2], policy=policy.default)
    assert message["Subject"] == "Hello First1" and message["Message-ID"] == "<segmail.7.101@shop.example>"
    assert [(a.contact_id, a.subject, a.salesperson) for a in store.activity] == [
        (101, "Hello First1", "MB"),
        (102, "Hello First2", "MB"),
    ]


def test_no_activity_line_when_the_mailing_keeps_none():
    store = FakeStore([pending_mail(1)])
    send(store, FakeTransport(), activity_log=False)
    assert store.status[1] == SENT and store.activity == []


def test_a_permanent_rejection_fails_that_mail_with_the_servers_code_and_text():
    store = FakeStore([pending_mail(1), pending_mail(2)])
    transport = FakeTransport()
    transport.refuse("c1@example.com", 550, "5.1.1 No such user")
    result = send(store, transport)
    assert (result.sent, result.failed, result.last_error) == (1, 1, "550 5.1.1 No such user")
    failed = store.written[1]
    assert (failed.status, failed.code, failed.response, failed.reason) == (
        FAILED,
        550,
        "5.1.1 No such user",
        "rejected by the server",
    )
    assert store.status[2] == SENT


def test_a_temporary_refusal_leaves_the_mail_pending_and_asks_for_a_retry():
    store = FakeStore([pending_mail(1), pending_mail(2)])
    transport = FakeTransport()
    transport.refuse("c1@example.com", 451, "4.7.1 Greylisted")
    with pytest.raises(TransientSendError, match=r"1 mail\(s\) left pending .*451 4.7.1 Greylisted"):
        send(store, transport)
    assert store.status == {1: PENDING, 2: SENT}  # the sent one was written before the task failed
    assert (transport.opened, transport.closed) == (1, 1)


def test_the_retry_sends_only_what_is_still_pending():
    store = FakeStore([pending_mail(1), pending_mail(2)])
    transport = FakeTransport()
    transport.refuse("c1@example.com", 451, "4.7.1 Greylisted")
    with pytest.raises(TransientSendError):
        send(store, transport)
    transport.replies.clear()  # greylisting passed
    result = send(store, transport)
    assert result.sent == 1
    assert sorted(transport.recipients) == ["c1@example.com", "c2@example.com"]  # each exactly once
    assert store.status == {1: SENT, 2: SENT}


def test_on_the_final_try_mails_left_pending_fail_with_the_last_error():
    store = FakeStore([pending_mail(1), pending_mail(2)])
    transport = FakeTransport()
    transport.refuse("c2@example.com", 452, "4.2.2 Mailbox full")
    result = send(store, transport, final_try=True)
    assert (result.sent, result.failed, result.pending) == (1, 1, 0)
    assert store.status == {1: SENT, 2: FAILED}
    assert store.failed_reasons == {2: "retries exhausted: 452 4.2.2 Mailbox full"}
    assert store.replies == {2: (452, "4.2.2 Mailbox full")}  # the last reply stays on the row


def test_a_drop_leaves_the_last_reply_of_the_mail_alone():
    store = FakeStore([pending_mail(1)], replies={1: (452, "4.2.2 Mailbox full")})
    transport = FakeTransport()
    transport.drop_at("c1@example.com")
    send(store, transport, final_try=True)
    assert store.status == {1: FAILED} and store.replies == {1: (452, "4.2.2 Mailbox full")}


def test_every_result_is_stored_before_the_next_mail_goes_out():
    """The crash window at the sender: when mail n reaches the server, mail n-1 is already written."""
    store = FakeStore([pending_mail(i) for i in (1, 2, 3)])
    transport = FakeTransport()
    at_send: list[dict] = []
    transport.after_send = lambda recipient: at_send.append(dict(store.status))
    send(store, transport)
    assert at_send == [
        {1: PENDING, 2: PENDING, 3: PENDING},
        {1: SENT, 2: PENDING, 3: PENDING},
        {1: SENT, 2: SENT, 3: PENDING},
    ]
    assert store.writes == [[1], [2], [3]] and store.closed


def test_a_dropped_connection_leaves_the_rest_of_the_batch_pending():
    store = FakeStore([pending_mail(1), pending_mail(2), pending_mail(3)])
    transport = FakeTransport()
    transport.drop_at("c2@example.com")
    with pytest.raises(TransientSendError, match=r"2 mail\(s\) left pending .*connection lost"):
        send(store, transport)
    assert transport.recipients == ["c1@example.com"]  # nothing is tried over the lost connection
    assert store.status == {1: SENT, 2: PENDING, 3: PENDING}
    assert transport.closed == 1


def test_a_dropped_connection_on_the_final_try_fails_the_rest_of_the_batch():
    store = FakeStore([pending_mail(1), pending_mail(2), pending_mail(3)])
    transport = FakeTransport()
    transport.drop_at("c2@example.com")
    result = send(store, transport, final_try=True)
    assert (result.sent, result.failed) == (1, 2)
    assert store.failed_reasons[3].startswith("retries exhausted: connection lost")


def test_dry_run_renders_every_mail_and_sends_none():
    store = FakeStore([pending_mail(1), pending_mail(2)], dry_run=True)
    transport = FakeTransport()
    result = send(store, transport)
    assert (result.skipped, result.sent) == (2, 0)
    assert transport.opened == 0 and transport.sent == []  # no connection at all
    assert store.status == {1: SKIPPED, 2: SKIPPED}
    assert store.written[1].reason == DRY_RUN_REASON == "dry run: rendered, not sent"
    assert store.written[1].message_id == "<segmail.7.101@shop.example>"
    assert store.activity == []


def test_a_template_that_fails_for_one_contact_fails_that_mail_only():
    compiled = variant(subject="{% if contact.first_name == 'Broken' %}{{ contact.nickname }}{% endif %}Hi")
    store = FakeStore([pending_mail(1, first_name="Broken"), pending_mail(2)])
    transport = FakeTransport()
    result = send(store, transport, compiled=compiled)
    assert (result.sent, result.failed) == (1, 1)
    assert store.status == {1: FAILED, 2: SENT}
    assert store.written[1].reason.startswith("rendering failed:") and "nickname" in store.written[1].reason
    assert store.written[1].message_id is None
    assert transport.recipients == ["c2@example.com"]


def test_the_rate_limit_spaces_the_mails_of_a_connection():
    clock = FakeClock()
    store = FakeStore([pending_mail(i) for i in (1, 2, 3, 4)])
    send(store, FakeTransport(), clock=clock, rate_limit_per_second=10)
    assert clock.sleeps == pytest.approx([0.1, 0.1, 0.1])  # the first mail goes at once


def test_without_a_rate_limit_nothing_waits():
    clock = FakeClock()
    send(FakeStore([pending_mail(1), pending_mail(2)]), FakeTransport(), clock=clock)
    assert clock.sleeps == []


def test_outcomes_are_written_even_when_the_batch_is_interrupted():
    store = FakeStore([pending_mail(1), pending_mail(2)])
    transport = FakeTransport(replies={"c2@example.com": KeyboardInterrupt()})
    with pytest.raises(KeyboardInterrupt):
        send(store, transport)
    assert store.status == {1: SENT, 2: PENDING}
    assert store.buffer == [] and transport.closed == 1


def test_an_empty_batch_opens_no_connection():
    store = FakeStore([pending_mail(1)], status={1: SENT})
    transport = FakeTransport()
    result = send(store, transport)
    assert result.as_dict() == {
        "batch_id": 1,
        "sent": 0,
        "failed": 0,
        "skipped": 0,
        "pending": 0,
        "last_error": None,
    }
    assert transport.opened == 0


def test_an_opt_out_that_arrives_while_sending_is_honoured_for_the_mails_not_yet_sent():
    store = FakeStore([pending_mail(i) for i in range(1, 5)])
    clock = FakeClock()
    transport = FakeTransport()

    def opt_out_after_the_first(recipient: str) -> None:
        store.blocked_now = {3: "opted out during the run"}
        clock.t += 1.0  # time passes: the next mail looks again

    transport.after_send = opt_out_after_the_first
    result = send(store, transport, clock=clock)
    assert transport.recipients == ["c1@example.com", "c2@example.com", "c4@example.com"]
    assert store.status[3] == SKIPPED and store.written[3].reason == "opted out during the run"
    assert (result.sent, result.skipped) == (3, 1)


def test_blocked_addresses_are_not_reread_for_every_mail():
    store = FakeStore([pending_mail(i) for i in range(1, 51)])
    send(store, FakeTransport(), clock=FakeClock())  # the fake clock stands still
    assert store.blocked_calls == 1


def test_mailbox_unknown_suppresses_the_address_and_logs_a_bounce():
    store = FakeStore([pending_mail(1), pending_mail(2)])
    transport = FakeTransport()
    transport.refuse(
        "c1@example.com", 550, "5.1.1 <c1@example.com>: Recipient address rejected: User unknown"
    )
    transport.refuse("c2@example.com", 554, "5.7.1 Message rejected as spam")
    send(store, transport)
    bounced, spam = store.written[1], store.written[2]
    assert bounced.status == FAILED and bounced.suppress_address == "c1@example.com"
    assert bounced.activity.kind == "bounce" and "550 5.1.1" in bounced.activity.detail
    assert spam.status == FAILED and spam.suppress_address is None and spam.activity is None
