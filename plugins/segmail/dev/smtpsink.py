"""A local SMTP server (aiosmtpd) that keeps what it receives: in memory and optionally as .eml files.

Used by `make demo` and `make airflow` as the mail catcher, and by the tests and benchmarks as
a real SMTP peer. It advertises PIPELINING (RFC 2920; `pipelining=False` turns that off), can
refuse chosen recipients (5xx or 4xx) or their content, drop the connection at the n-th DATA, and
take its time before accepting each message, to test how sending behaves when servers misbehave.

Stored files are numbered on from the highest number already in the folder and created
exclusively, so a restarted sink (`make airflow` keeps one outbox) never overwrites a mail.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
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
    # recipient -> reply to the message content (after the final "."), e.g. "554 5.7.1 Spam"
    refuse_content: dict[str, str] = field(default_factory=dict)
    drop_at_data: int | None = None  # close the connection when this DATA (1-based) arrives, once
    data_delay: float = 0.0  # seconds between keeping a message and saying 250 (a slow server)
    pipelining: bool = True  # advertise PIPELINING in the EHLO reply
    data_count: int = 0
    keep: bool = True
    lock: threading.Lock = field(default_factory=threading.Lock)
    next_file: int = 0  # the number of the next .eml file; 0: not yet looked up in store_dir

    # aiosmtpd's hooks: their names and signatures are aiosmtpd's.
    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

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
        refused = next((self.refuse_content[r] for r in envelope.rcpt_tos if r in self.refuse_content), None)
        if refused is not None:
            return refused
        received = Received(
            envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content or envelope.content
        )
        with self.lock:
            if self.keep:
                self.messages.append(received)
            number = self.data_count
        if self.store_dir is not None:
            self.store(received.data)
        if self.data_delay:
            await asyncio.sleep(self.data_delay)
        return f"250 2.0.0 Ok: queued as {number:06d}"

    def store(self, data: bytes) -> Path:
        """The mail as the next numbered .eml file; an existing file is never replaced."""
        self.store_dir.mkdir(parents=True, exist_ok=True)
        with self.lock:
            if not self.next_file:
                numbers = (int(p.stem) for p in self.store_dir.glob("*.eml") if p.stem.isdigit())
                self.next_file = max(numbers, default=0) + 1
            while True:
                path = self.store_dir / f"{self.next_file:06d}.eml"
                self.next_file += 1
                try:
                    with path.open("xb") as out:
                        out.write(data)
                    return path
                except FileExistsError:  # written by another sink on the same folder
                    continue


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

    @property
    def connection_json(self) -> str:
        """The same connection as `AIRFLOW_CONN_*` JSON with typed extras: Airflow masks every string
        extra as a secret and warns about the short ones ("true", "10"); booleans and numbers are not
        secrets."""
        return smtp_connection_json(self.port)

    def __enter__(self) -> SmtpSink:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()


def smtp_connection_json(port: int) -> str:
    """An `AIRFLOW_CONN_*` value for a plain SMTP server on 127.0.0.1 (no TLS, no login)."""
    extra = {"disable_ssl": True, "disable_tls": True, "timeout": 10}
    return json.dumps({"conn_type": "smtp", "host": "127.0.0.1", "port": port, "extra": extra})


def main() -> None:
    """`python -m segmail.dev.smtpsink DIR [PORT]`: run a sink until SIGTERM or Ctrl-C, then stop
    quietly (used by `make airflow`)."""
    import sys

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
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
        while not stop.wait(1):
            pass


if __name__ == "__main__":
    main()
