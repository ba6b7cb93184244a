"""A local SMTP server (aiosmtpd) that keeps what it receives: in memory and optionally as .eml files.

Used by `make demo` and `make airflow` as the mail catcher, and by the tests and benchmarks as
a real SMTP peer. It can refuse chosen recipients (5xx or 4xx) and drop the connection at the
n-th DATA, to test how sending behaves when servers misbehave.
"""

from __future__ import annotations

import logging
import socket
import threading
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Received:
    envelope_from: str
    recipients: list[str]
    data: bytes

    def parsed(self) -> EmailMessage:
        return message_from_bytes(self.data, policy=policy.default)


@dataclass
class SinkHandler:
    store_dir: Path | None = None
    messages: list[Received] = field(default_factory=list)
    # recipient -> SMTP reply such as "550 5.1.1 No such user" (permanent) or "451 4.3.0 Try later"
    refuse: dict[str, str] = field(default_factory=dict)
    # refuse with a 4xx only this many times per recipient, then accept
    refuse_times: dict[str, int] = field(default_factory=dict)
    drop_at_data: int | None = None  # close the connection when this DATA (1-based) arrives, once
    data_count: int = 0
    keep: bool = True
    lock: threading.Lock = field(default_factory=threading.Lock)

    # aiosmtpd's hooks: their names and signatures are aiosmtpd's.
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self.refuse.get(address)
        if reply is not None:
            remaining = self.refuse_times.get(address)
            if remaining is None or remaining > 0:
                if remaining is not None:
                    self.refuse_times[address] = remaining - 1
                return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.data_count += 1
            drop = self.drop_at_data is not None and self.data_count == self.drop_at_data
            if drop:
                self.drop_at_data = None
        if drop:
            server.transport.close()  # the client sees the connection drop before any reply
            return "421 closing"
        received = Received(
            envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content or envelope.content
        )
        with self.lock:
            if self.keep:
                self.messages.append(received)
            number = self.data_count
        if self.store_dir is not None:
            self.store_dir.mkdir(parents=True, exist_ok=True)
            (self.store_dir / f"{len(self.messages):06d}.eml").write_bytes(received.data)
        return f"250 2.0.0 Ok: queued as {number:06d}"


class SmtpSink:
    def __init__(self, *, port: int | None = None, store_dir: Path | None = None) -> None:
        from aiosmtpd.controller import Controller

        logging.getLogger("mail.log").setLevel(logging.WARNING)
        self.port = port or free_port()
        self.handler = SinkHandler(store_dir=store_dir)
        self.controller = Controller(
            self.handler, hostname="127.0.0.1", port=self.port, data_size_limit=50 * 1024 * 1024
        )

    @property
    def messages(self) -> list[Received]:
        return self.handler.messages

    @property
    def connection_uri(self) -> str:
        """An Airflow connection URI for this server (plain SMTP on localhost, no TLS, no login)."""
        return f"smtp://127.0.0.1:{self.port}?disable_ssl=true&disable_tls=true&timeout=10"

    def __enter__(self) -> SmtpSink:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()


def main() -> None:
    """`python -m segmail.dev.smtpsink DIR [PORT]`: run a sink until interrupted (used by `make airflow`)."""
    import sys
    import time

    folder = (
        None
        if len(sys.argv) > 1 and sys.argv[1] == "-"
        else Path(sys.argv[1] if len(sys.argv) > 1 else "outbox")
    )
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 1025
    with SmtpSink(port=port, store_dir=folder) as sink:
        if folder is None:  # benchmarks: count, do not keep
            sink.handler.keep = False
        print(f"SMTP sink on 127.0.0.1:{port}, storing .eml files in {folder or '(nowhere)'}", flush=True)
        while True:
            time.sleep(3600)


if __name__ == "__main__":
    main()
