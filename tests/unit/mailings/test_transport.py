"""classify: what each error raised while sending means for the mail; the SMTP dialogue of the
transport, pipelined and lock-step, against a scripted server."""

from __future__ import annotations

import smtplib

import pytest
from segmail.mailings.transport import (
    Lane,
    Outgoing,
    Result,
    SendError,
    SendErrorKind,
    SmtpHookTransport,
    SmtpRefused,
    classify,
    wire_data,
)
from unit.mailings.fakes import ScriptedSmtp

FAILED, TRANSIENT, DISCONNECTED = SendErrorKind.FAILED, SendErrorKind.TRANSIENT, SendErrorKind.DISCONNECTED


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        pytest.param(
            smtplib.SMTPRecipientsRefused({"a@x.example": (550, b"5.1.1 No such user")}),
            SendError(FAILED, 550, "5.1.1 No such user"),
            id="recipient-refused-5xx-fails",
        ),
        pytest.param(
            smtplib.SMTPRecipientsRefused({"a@x.example": (452, b"4.2.2 Mailbox full")}),
            SendError(TRANSIENT, 452, "4.2.2 Mailbox full"),
            id="recipient-refused-4xx-is-transient",
        ),
        pytest.param(
            smtplib.SMTPSenderRefused(553, b"5.7.1 Sender not allowed", "news@shop.example"),
            SendError(FAILED, 553, "5.7.1 Sender not allowed"),
            id="sender-refused-5xx-fails",
        ),
        pytest.param(
            smtplib.SMTPDataError(451, b"4.3.0 Try again"),
            SendError(TRANSIENT, 451, "4.3.0 Try again"),
            id="data-error-4xx-is-transient",
        ),
        pytest.param(
            smtplib.SMTPDataError(554, "5.7.1 Spam"),
            SendError(FAILED, 554, "5.7.1 Spam"),
            id="data-error-5xx-with-a-str-reply",
        ),
        pytest.param(
            smtplib.SMTPResponseException(-1, b"Connection unexpectedly closed"),
            SendError(DISCONNECTED, None, "connection lost: Connection unexpectedly closed"),
            id="code-minus-one-is-a-lost-connection",
        ),
        pytest.param(
            smtplib.SMTPServerDisconnected("Server not connected"),
            SendError(DISCONNECTED, None, "connection lost: Server not connected"),
            id="server-disconnected",
        ),
        pytest.param(
            ConnectionResetError(104, "Connection reset by peer"),
            SendError(DISCONNECTED, None, "connection lost: [Errno 104] Connection reset by peer"),
            id="connection-reset",
        ),
        pytest.param(
            TimeoutError("timed out"),
            SendError(DISCONNECTED, None, "connection lost: timed out"),
            id="timeout",
        ),
        pytest.param(
            ValueError("odd reply"),
            SendError(TRANSIENT, None, "ValueError: odd reply"),
            id="anything-else-is-transient",
        ),
        pytest.param(
            smtplib.SMTPRecipientsRefused({"a@x.example": (550, b"5.1.1 M\xfcller unknown")}),
            SendError(FAILED, 550, "5.1.1 M\ufffdller unknown"),
            id="undecodable-reply-bytes-are-replaced",
        ),
    ],
)
def test_classify(exc, expected):
    assert classify(exc) == expected


@pytest.mark.parametrize(
    ("error", "summary"),
    [
        pytest.param(
            SendError(TRANSIENT, 452, "4.2.2 Mailbox full"), "452 4.2.2 Mailbox full", id="with-code"
        ),
        pytest.param(SendError(DISCONNECTED, None, "connection lost: x"), "connection lost: x", id="without"),
    ],
)
def test_summary_puts_the_code_before_the_text(error, summary):
    assert error.summary == summary


def mails(*recipients: str) -> list[Outgoing]:
    return [
        Outgoing(r, "news@shop.example", r, f"Subject: to {r}\r\n\r\nHello\r\n".encode()) for r in recipients
    ]


def run(server: ScriptedSmtp, outgoing: list[Outgoing]) -> tuple[list[list[Result]], list[str]]:
    """Send over one lane; returns the rounds as recorded and, per round, checks the crash rule:
    when a round is recorded, no later mail's content has reached the server."""
    transport = SmtpHookTransport("smtp_default")
    transport.lanes = [Lane(server)]
    rounds: list[list[Result]] = []
    pulled: list[str] = []

    def record(results: list[Result]) -> None:
        rounds.append(results)
        recorded = {r.mail.recipient for batch in rounds for r in batch}
        assert {rcpt for rcpt, _ in server.delivered} <= recorded

    def source():
        for mail in outgoing:
            pulled.append(mail.recipient)
            yield mail

    transport.send_all(source(), record)
    return rounds, pulled


def outcome(rounds: list[list[Result]]) -> dict[str, tuple]:
    return {
        r.mail.recipient: (r.code, r.text) if r.error is None else (r.error.kind, r.error.code, r.error.text)
        for batch in rounds
        for r in batch
    }


@pytest.mark.parametrize(
    "pipelining", [pytest.param(True, id="pipelined"), pytest.param(False, id="lockstep")]
)
def test_every_mail_is_accepted_and_recorded_before_the_next_content_goes_out(pipelining):
    server = ScriptedSmtp(pipelining=pipelining)
    rounds, _ = run(server, mails("a@x.example", "b@x.example", "c@x.example"))
    assert [len(batch) for batch in rounds] == [1, 1, 1]
    assert outcome(rounds) == {
        r: (250, "2.0.0 Ok: queued") for r in ("a@x.example", "b@x.example", "c@x.example")
    }
    assert [rcpt for rcpt, _ in server.delivered] == ["a@x.example", "b@x.example", "c@x.example"]
    assert server.delivered[0][1] == b"Subject: to a@x.example\r\n\r\nHello\r\n"


def test_pipelining_sends_the_next_envelope_with_the_current_content():
    server = ScriptedSmtp()
    run(server, mails("a@x.example", "b@x.example"))
    assert server.writes == [
        b"MAIL FROM:<news@shop.example>\r\nRCPT TO:<a@x.example>\r\nDATA\r\n",
        b"Subject: to a@x.example\r\n\r\nHello\r\n.\r\n"
        b"MAIL FROM:<news@shop.example>\r\nRCPT TO:<b@x.example>\r\nDATA\r\n",
        b"Subject: to b@x.example\r\n\r\nHello\r\n.\r\n",
    ]


def test_without_pipelining_every_command_waits_for_its_reply():
    server = ScriptedSmtp(pipelining=False)
    run(server, mails("a@x.example"))
    assert server.writes == [
        b"MAIL FROM:<news@shop.example>\r\n",
        b"RCPT TO:<a@x.example>\r\n",
        b"DATA\r\n",
        b"Subject: to a@x.example\r\n\r\nHello\r\n.\r\n",
    ]


REFUSALS = [
    pytest.param(("MAIL", "news@shop.example"), (553, "5.7.1 Sender not allowed"), FAILED, id="mail-5xx"),
    pytest.param(("MAIL", "news@shop.example"), (451, "4.3.0 Try later"), TRANSIENT, id="mail-4xx"),
    pytest.param(("RCPT", "b@x.example"), (550, "5.1.1 No such user"), FAILED, id="rcpt-5xx"),
    pytest.param(("RCPT", "b@x.example"), (452, "4.2.2 Mailbox full"), TRANSIENT, id="rcpt-4xx"),
    pytest.param(("DATA", "b@x.example"), (554, "5.7.1 No DATA today"), FAILED, id="data-5xx"),
    pytest.param(("DATA", "b@x.example"), (451, "4.3.0 Not now"), TRANSIENT, id="data-4xx"),
    pytest.param(("CONTENT", "b@x.example"), (554, "5.7.1 Spam"), FAILED, id="content-5xx"),
    pytest.param(("CONTENT", "b@x.example"), (451, "4.7.1 Greylisted"), TRANSIENT, id="content-4xx"),
]


@pytest.mark.parametrize(
    "pipelining", [pytest.param(True, id="pipelined"), pytest.param(False, id="lockstep")]
)
@pytest.mark.parametrize(("key", "reply", "kind"), REFUSALS)
def test_each_refusal_is_that_mails_alone_and_the_connection_carries_on(key, reply, kind, pipelining):
    """A refusal at MAIL, RCPT, DATA or after the content: that mail gets the server's code and
    text; the transaction is reset (never given content), and the mails around it are sent."""
    sender_refusal = key[0] == "MAIL"
    server = ScriptedSmtp({key: reply} if not sender_refusal else {}, pipelining=pipelining)
    outgoing = mails("a@x.example", "b@x.example", "c@x.example")
    if sender_refusal:  # only b's envelope sender is refused
        outgoing[1] = Outgoing("b@x.example", "other@shop.example", "b@x.example", outgoing[1].data)
        server.script[("MAIL", "other@shop.example")] = reply
    rounds, _ = run(server, outgoing)
    results = outcome(rounds)
    assert results["b@x.example"] == (kind, reply[0], reply[1])
    assert results["a@x.example"][0] == results["c@x.example"][0] == 250
    assert [rcpt for rcpt, _ in server.delivered] == ["a@x.example", "c@x.example"]
    if key[0] != "CONTENT":
        assert b"Subject: to b@x.example" not in b"".join(server.writes)
        assert "RSET" in server.commands


def test_a_dropped_connection_leaves_the_mail_in_flight_and_the_announced_one_unsent():
    server = ScriptedSmtp({("CONTENT", "b@x.example"): None})
    rounds, pulled = run(server, mails("a@x.example", "b@x.example", "c@x.example", "d@x.example"))
    results = outcome(rounds)
    assert results["a@x.example"][0] == 250
    assert results["b@x.example"][0] == results["c@x.example"][0] == DISCONNECTED
    assert pulled == ["a@x.example", "b@x.example", "c@x.example"]  # d was never taken
    assert b"Subject: to c@x.example" not in b"".join(server.writes)


def test_a_421_closes_the_connection_for_the_rest():
    server = ScriptedSmtp({("RCPT", "a@x.example"): (421, "4.7.0 Too many errors, closing")})
    rounds, pulled = run(server, mails("a@x.example", "b@x.example"))
    assert outcome(rounds)["a@x.example"] == (DISCONNECTED, 421, "4.7.0 Too many errors, closing")
    assert pulled == ["a@x.example"] and server.delivered == []


def test_an_address_that_cannot_go_on_the_wire_fails_without_a_word_to_the_server():
    server = ScriptedSmtp()
    rounds, _ = run(server, mails("a@x.example", "b@x.example>\r\nRCPT TO:<evil@x.example"))
    results = outcome(rounds)
    assert results["a@x.example"][0] == 250
    assert results["b@x.example>\r\nRCPT TO:<evil@x.example"][0] == FAILED
    assert b"evil" not in b"".join(server.writes)


@pytest.mark.parametrize(
    ("data", "wire"),
    [
        pytest.param(b"A\r\n.B\r\n", b"A\r\n..B\r\n.\r\n", id="leading-dot-doubled"),
        pytest.param(b".B", b"..B\r\n.\r\n", id="first-line-dot-and-final-crlf"),
        pytest.param(b"A\nB\rC\r\n", b"A\r\nB\r\nC\r\n.\r\n", id="bare-lf-and-cr-become-crlf"),
        pytest.param(b"A\r\nB\r\n", b"A\r\nB\r\n.\r\n", id="already-clean"),
    ],
)
def test_wire_data_ends_lines_with_crlf_and_doubles_leading_dots(data, wire):
    """What smtplib sends for clean input, and bare CR or LF (never valid in SMTP) made CRLF."""
    assert wire_data(data) == wire


def test_several_connections_share_the_mails_and_record_one_round_at_a_time():
    servers = [ScriptedSmtp(), ScriptedSmtp(pipelining=False), ScriptedSmtp()]
    transport = SmtpHookTransport("smtp_default", connections=3)
    opened = iter(servers)
    transport._open = lambda: Lane(next(opened))
    rounds: list[list[Result]] = []

    def record(results):
        rounds.append(results)
        recorded = {r.mail.recipient for batch in rounds for r in batch}
        assert all({rcpt for rcpt, _ in s.delivered} <= recorded for s in servers)

    with transport:
        transport.send_all(iter(mails(*(f"{i}@x.example" for i in range(8)))), record)
    assert max(len(batch) for batch in rounds) == 3
    assert sorted(r for s in servers for r, _ in s.delivered) == sorted(f"{i}@x.example" for i in range(8))
    assert all(s.delivered for s in servers)
    assert all(s.quitted for s in servers)


def test_a_further_connection_that_cannot_be_opened_is_done_without():
    server = ScriptedSmtp()
    transport = SmtpHookTransport("smtp_default", connections=2)
    opened = iter([Lane(server)])

    def open_lane():
        lane = next(opened, None)
        if lane is None:
            raise ConnectionRefusedError(111, "Connection refused")
        return lane

    transport._open = open_lane
    rounds: list[list[Result]] = []
    with transport:
        transport.send_all(iter(mails("a@x.example", "b@x.example", "c@x.example")), rounds.append)
    assert [r for r, _ in server.delivered] == ["a@x.example", "b@x.example", "c@x.example"]


def test_send_returns_the_reply_or_raises_what_classify_reads():
    server = ScriptedSmtp({("RCPT", "b@x.example"): (550, "5.1.1 No such user")})
    transport = SmtpHookTransport("smtp_default")
    transport._open = lambda: Lane(server)
    with transport:
        assert transport.send("news@shop.example", "a@x.example", b"Hi\r\n") == (250, "2.0.0 Ok: queued")
        with pytest.raises(SmtpRefused) as raised:
            transport.send("news@shop.example", "b@x.example", b"Hi\r\n")
    assert classify(raised.value) == SendError(FAILED, 550, "5.1.1 No such user")
    assert server.quitted


def test_leaving_with_a_transaction_open_drops_the_connection_without_a_word():
    """A server waiting for content must never get QUIT (it would become part of the message)."""
    server = ScriptedSmtp()
    lane = Lane(server)
    lane.start(mails("a@x.example")[0])
    lane.close()
    assert server.closed and not server.quitted
    assert server.writes == [b"MAIL FROM:<news@shop.example>\r\nRCPT TO:<a@x.example>\r\nDATA\r\n"]


def test_leaving_quits_and_falls_back_to_closing():
    class Client:
        closed = False

        def has_extn(self, name):
            return False

        def quit(self):
            raise smtplib.SMTPServerDisconnected("gone")

        def close(self):
            self.closed = True

    client = Client()
    transport = SmtpHookTransport("smtp_default")
    transport.lanes = [Lane(client)]
    transport.__exit__(None, None, None)
    assert client.closed and transport.lanes == []
