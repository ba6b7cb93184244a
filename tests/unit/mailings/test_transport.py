"""classify: what each error raised while sending means for the mail; SmtpHookTransport's SMTP dialogue."""

from __future__ import annotations

import smtplib

import pytest
from segmail.mailings.transport import SendError, SendErrorKind, SmtpHookTransport, classify

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


class ScriptedClient:
    """The part of smtplib.SMTP that SmtpHookTransport.send uses, with scripted replies."""

    def __init__(self, mail=(250, b"Ok"), rcpt=(250, b"Ok"), data=(250, b"2.0.0 Ok: queued as 1")):
        self.replies = {"mail": mail, "rcpt": rcpt, "data": data}
        self.calls: list[str] = []

    def mail(self, sender):
        self.calls.append("mail")
        return self.replies["mail"]

    def rcpt(self, recipient):
        self.calls.append("rcpt")
        return self.replies["rcpt"]

    def data(self, data):
        self.calls.append("data")
        return self.replies["data"]

    def rset(self):
        self.calls.append("rset")


def transport_with(client: ScriptedClient) -> SmtpHookTransport:
    transport = SmtpHookTransport("smtp_default")
    transport.client = client
    return transport


def test_send_returns_the_servers_reply_as_text():
    client = ScriptedClient()
    assert transport_with(client).send("a@x.example", "b@y.example", b"...") == (250, "2.0.0 Ok: queued as 1")
    assert client.calls == ["mail", "rcpt", "data"]


@pytest.mark.parametrize(
    ("step", "reply", "error", "code"),
    [
        pytest.param("mail", (553, b"no"), smtplib.SMTPSenderRefused, 553, id="sender"),
        pytest.param("rcpt", (550, b"no"), smtplib.SMTPRecipientsRefused, 550, id="recipient"),
        pytest.param("data", (451, b"later"), smtplib.SMTPDataError, 451, id="data"),
    ],
)
def test_a_refusal_resets_the_transaction_and_raises_what_classify_reads(step, reply, error, code):
    client = ScriptedClient(**{step: reply})
    with pytest.raises(error) as raised:
        transport_with(client).send("a@x.example", "b@y.example", b"...")
    assert client.calls[-1] == "rset"  # the connection can carry the next mail
    assert classify(raised.value).code == code


def test_leaving_the_context_quits_and_falls_back_to_closing():
    class Client:
        closed = False

        def quit(self):
            raise smtplib.SMTPServerDisconnected("gone")

        def close(self):
            self.closed = True

    client = Client()
    transport = transport_with(client)
    transport.__exit__(None, None, None)
    assert client.closed and transport.client is None
