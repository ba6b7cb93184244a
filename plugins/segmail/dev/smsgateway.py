"""A private Kannel on loopback ports: bearerbox, smsbox and fakesmsc as the SMS centre, for the SMS
tests, `make demo` and `make bench-sms`.

`LocalKannel` writes its own kannel.conf under a temporary directory, starts the three processes
from Debian's binaries (`kannel`, `kannel-extras`) and stops exactly what it started; the system's
Kannel (configuration, service, logs) is never touched. No root is needed.

Two fake SMSCs: `phones` takes every message segmail sends; a long-running fakesmsc is connected to
it and prints each message it receives, which `received()` reads back. Kannel's fake SMSC reports
every message it hands over as delivered (a DLR of type 1), so delivery reports reach the dlr-url
of each message at once. `mo` carries messages *from* phones (`inject_mo`, e.g. a STOP): a fake
SMSC takes one client at a time, so a short-lived fakesmsc connects to it, sends one line and
leaves; `allowed-smsc-id` keeps outgoing messages off it. smsbox passes each inbound message to
the sms-service's get-url (segmail's public app) and sends no reply (`max-messages = 0`).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote_to_bytes

from segmail.dev.processes import Children
from segmail.dev.smtpsink import free_port
from segmail.sms.gateway import SmsEncoding

BEARERBOX = "/usr/sbin/bearerbox"
SMSBOX = "/usr/sbin/smsbox"
FAKESMSC = "/usr/lib/kannel/test/fakesmsc"
SENDSMS_USER = "segmail"
SENDSMS_PASSWORD = "segmail-sendsms"  # a throwaway instance on loopback only
ADMIN_PASSWORD = "segmail-admin"
PHONES_SMSC = "phones"
MO_SMSC = "mo"
SHORT_CODE = "12345"  # the number phones reply to
_MESSAGE_TYPES = ("text", "data", "ucs-2", "udh")


class KannelError(RuntimeError):
    pass


def missing() -> str | None:
    """Why Kannel cannot run here (binaries missing), or None."""
    absent = [path for path in (BEARERBOX, SMSBOX, FAKESMSC) if not os.path.exists(path)]
    if absent:
        return f"missing {', '.join(absent)} (scripts/ensure-debian.sh installs kannel and kannel-extras)"
    return None


@dataclass(frozen=True)
class ReceivedSms:
    """One message as the SMS centre got it; long messages are put together from their parts."""

    sender: str
    to: str
    text: str
    encoding: SmsEncoding
    parts: int = 1


@dataclass
class LocalKannel:
    """bearerbox + smsbox + fakesmsc under `root`; `inbound_url` is the sms-service's get-url base
    (segmail's `/sms/in/<secret>`), None to drop inbound messages."""

    inbound_url: str | None = None
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="segmail-kannel-")))
    admin_port: int = field(default_factory=free_port)
    box_port: int = field(default_factory=free_port)
    sendsms_port: int = field(default_factory=free_port)
    phones_port: int = field(default_factory=free_port)
    mo_port: int = field(default_factory=free_port)
    _children: Children = field(default_factory=Children)

    @property
    def sendsms_url(self) -> str:
        return f"http://127.0.0.1:{self.sendsms_port}/cgi-bin/sendsms"

    def connection(self, **extra: object) -> dict:
        """The `sms_default` Airflow connection (JSON form) for this instance."""
        return {
            "conn_type": "http",
            "host": "127.0.0.1",
            "port": self.sendsms_port,
            "login": SENDSMS_USER,
            "password": SENDSMS_PASSWORD,
            "extra": {"default_sender": "Segmail", "smsc": PHONES_SMSC, **extra},
        }

    # ---------------------------------------------------------------- lifecycle

    def __enter__(self) -> LocalKannel:
        reason = missing()
        if reason:
            raise KannelError(reason)
        config = self.root / "kannel.conf"
        config.write_text(self.config())
        try:
            self._start([BEARERBOX, str(config)], "bearerbox.out")
            _wait_for_port(self.box_port, self.root / "bearerbox.log")
            self._start([SMSBOX, str(config)], "smsbox.out")
            _wait_for_port(self.sendsms_port, self.root / "smsbox.log")
            self._start(self._fakesmsc(self.phones_port, "-m", "0", "x y text unused"), "phones.out")
            self._wait_until_online()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._children.stop(grace=5)
        shutil.rmtree(self.root, ignore_errors=True)

    def _start(self, argv: list[str], output: str) -> None:
        with open(self.root / output, "wb") as out:
            self._children.start(argv, stdout=out, stderr=subprocess.STDOUT, cwd=self.root)

    def _fakesmsc(self, port: int, *args: str) -> list[str]:
        return [FAKESMSC, "-H", "127.0.0.1", "-r", str(port), *args]

    def _wait_until_online(self, *, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while f"{PHONES_SMSC}[{PHONES_SMSC}]" not in (status := self.status()) or "online" not in status:
            if time.monotonic() > deadline:
                raise KannelError(f"fakesmsc did not connect:\n{status}\n{self.log_tail()}")
            time.sleep(0.1)

    def status(self) -> str:
        """bearerbox's status page (plain text)."""
        url = f"http://127.0.0.1:{self.admin_port}/status.txt?password={ADMIN_PASSWORD}"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.read().decode(errors="replace")
        except OSError as exc:
            return f"no status: {exc}"

    def config(self) -> str:
        return "\n".join(
            (self._core_group(), self._smsc_groups(), self._smsbox_groups(), self._service_group())
        )

    def _core_group(self) -> str:
        return f"""\
group = core
admin-port = {self.admin_port}
admin-interface = 127.0.0.1
admin-password = {ADMIN_PASSWORD}
smsbox-port = {self.box_port}
smsbox-interface = 127.0.0.1
box-allow-ip = 127.0.0.1
log-file = "{self.root}/bearerbox.log"
log-level = 1
dlr-storage = internal
"""

    def _smsc_groups(self) -> str:
        return f"""\
group = smsc
smsc = fake
smsc-id = {PHONES_SMSC}
port = {self.phones_port}
our-host = 127.0.0.1
connect-allow-ip = 127.0.0.1

group = smsc
smsc = fake
smsc-id = {MO_SMSC}
allowed-smsc-id = {MO_SMSC}
port = {self.mo_port}
our-host = 127.0.0.1
connect-allow-ip = 127.0.0.1
"""

    def _smsbox_groups(self) -> str:
        return f"""\
group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = {self.box_port}
sendsms-port = {self.sendsms_port}
sendsms-interface = 127.0.0.1
log-file = "{self.root}/smsbox.log"
log-level = 1
mo-recode = true
http-request-retry = 3
http-queue-delay = 1

group = sendsms-user
username = {SENDSMS_USER}
password = {SENDSMS_PASSWORD}
max-messages = 10
concatenation = true
"""

    def _service_group(self) -> str:
        if self.inbound_url is None:
            return 'group = sms-service\nkeyword = default\ncatch-all = true\ntext = "ignored"\nmax-messages = 0\n'
        return f"""\
group = sms-service
keyword = default
catch-all = true
get-url = "{self.inbound_url}?from=%p&to=%P&text=%a"
max-messages = 0
omit-empty = true
"""

    # ---------------------------------------------------------------- the phones' side

    def received(self, *, since: int = 0) -> list[ReceivedSms]:
        """The messages fakesmsc got so far, in order, from the `since`-th on (`len(received())`
        before sending: what arrived since); parts of a long message put together."""
        path = self.root / "phones.out"
        lines = path.read_text(errors="replace").splitlines() if path.exists() else []
        return _assemble(_message_lines(lines))[since:]

    def wait_received(self, count: int, *, since: int = 0, timeout: float = 30) -> list[ReceivedSms]:
        """Until fakesmsc has `count` messages after `since` (more fails: nothing may arrive twice)."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.received(since=since)
            if len(got) > count:
                raise KannelError(f"expected {count} messages, fakesmsc got {len(got)}")
            if len(got) == count:
                return got
            if time.monotonic() > deadline:
                raise KannelError(f"fakesmsc got {len(got)} of {count} messages after {timeout}s")
            time.sleep(0.05)

    def inject_mo(self, *, sender: str, text: str, to: str = SHORT_CODE, timeout: float = 15) -> None:
        """A message from the phone `sender` to `to`, as the SMS centre would pass it on."""
        plain = text.isascii() and text.isprintable()
        line = f"{sender} {to} text {text}" if plain else f"{sender} {to} ucs2 {_url_encode(text)}"
        out = self.root / f"mo-{time.monotonic_ns()}.out"
        with open(out, "wb") as sink:
            process = subprocess.Popen(
                self._fakesmsc(self.mo_port, "-m", "1", line),
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        try:
            deadline = time.monotonic() + timeout
            while "sent message 1" not in out.read_text(errors="replace"):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise KannelError(f"fakesmsc did not send the message:\n{out.read_text()}")
                time.sleep(0.02)
        finally:
            process.terminate()
            process.wait(timeout=10)

    def log_tail(self, lines: int = 30) -> str:
        parts = []
        for name in ("bearerbox.log", "smsbox.log", "phones.out"):
            path = self.root / name
            if path.exists():
                parts.append(
                    f"--- {name}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
                )
        return "\n".join(parts)


def _url_encode(text: str) -> str:
    """UTF-16BE, %-encoded: how a phone's UCS-2 message reaches the SMS centre."""
    return "".join(f"%{byte:02X}" for byte in text.encode("utf-16-be"))


# ---------------------------------------------------------------- reading fakesmsc's output


@dataclass(frozen=True)
class _Line:
    sender: str
    to: str
    kind: str  # text | data | ucs-2 | udh
    udh: bytes
    data: bytes


def _message_lines(output: list[str]) -> list[_Line]:
    """fakesmsc logs each line from the SMSC as `Got message N: <sender receiver type ...>`. A text
    with a line break arrives as several lines: those without a message's shape continue the last."""
    found: list[_Line] = []
    for raw in output:
        _, marker, rest = raw.partition("Got message ")
        if not marker or ": <" not in rest or not rest.endswith(">"):
            continue
        body = rest.split(": <", 1)[1][:-1]
        line = _parse(body)
        if line is None and found:
            previous = found[-1]
            found[-1] = _Line(**{**previous.__dict__, "data": previous.data + b"\n" + body.encode()})
        elif line is not None:
            found.append(line)
    return found


def _parse(body: str) -> _Line | None:
    words = body.split(" ", 3)
    if len(words) < 4 or words[2] not in _MESSAGE_TYPES:
        return None
    sender, to, kind, rest = words
    if kind == "text":
        return _Line(sender, to, kind, b"", rest.encode())
    if kind == "udh":
        udh, _, data = rest.partition(" data ")
        return _Line(sender, to, kind, _unquote(udh), _unquote(data))
    return _Line(sender, to, kind, b"", _unquote(rest))


def _unquote(value: str) -> bytes:
    """Kannel's URL encoding writes a space as `+` (and a plus as %2B)."""
    return unquote_to_bytes(value.replace("+", " "))


def _assemble(lines: list[_Line]) -> list[ReceivedSms]:
    """Whole messages: single lines as they are, concatenated parts (UDH IE 0x00) once all arrived."""
    messages: list[ReceivedSms] = []
    pending: dict[tuple[str, str, int], dict[int, bytes]] = {}
    for line in lines:
        concat = _concatenation(line.udh)
        if concat is None:
            messages.append(_decoded(line, line.data, parts=1))
            continue
        ref, total, number = concat
        key = (line.sender, line.to, ref)
        pending.setdefault(key, {})[number] = line.data
        if len(pending[key]) == total:
            data = b"".join(part for _, part in sorted(pending.pop(key).items()))
            messages.append(_decoded(line, data, parts=total))
    return messages


def _concatenation(udh: bytes) -> tuple[int, int, int] | None:
    """(reference, parts, this part) from a UDH with the 8-bit concatenation element."""
    if len(udh) >= 6 and udh[1] == 0x00 and udh[2] == 0x03:
        return udh[3], udh[4], udh[5]
    return None


def _decoded(line: _Line, data: bytes, *, parts: int) -> ReceivedSms:
    """Kannel keeps GSM-7 texts as UTF-8 and UCS-2 texts as UTF-16BE; fakesmsc says which only
    for single messages (`text`/`ucs-2`). Parts of a long one carry raw bytes: UCS-2 when they are
    not printable UTF-8 (UTF-16BE of Latin or Cyrillic text has control bytes, CJK invalid UTF-8)."""
    if line.kind == "ucs-2" or (line.kind in ("udh", "data") and _looks_utf16(data)):
        return ReceivedSms(line.sender, line.to, data.decode("utf-16-be"), SmsEncoding.UCS2, parts)
    return ReceivedSms(line.sender, line.to, data.decode(errors="replace"), SmsEncoding.GSM7, parts)


def _looks_utf16(data: bytes) -> bool:
    if len(data) % 2:
        return False
    try:
        text = data.decode()
    except UnicodeDecodeError:
        return True
    return any(ord(c) < 32 and c not in "\n\r\t" for c in text)


def _wait_for_port(port: int, log: Path, *, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                text = log.read_text(errors="replace")[-3000:] if log.exists() else ""
                raise KannelError(f"nothing listens on 127.0.0.1:{port}:\n{text}") from None
            time.sleep(0.05)
