"""Kannel's HTTP `sendsms` interface as an `SmsGateway`.

One keep-alive HTTP connection per gateway object, one GET per message (Kannel's sendsms takes no
batches). The text goes as UTF-8 (`charset=UTF-8`); UCS-2 messages add `coding=2`, so Kannel sends
exactly the encoding segmail counted parts for, and Kannel splits long texts into concatenated
parts itself. With a report URL, `dlr-mask` asks for the final reports (delivered, failed, rejected
by the SMSC: an expiry arrives as `failed` with the SMSC's text) and `dlr-url` is the message's
report URL with Kannel's escapes for the report type (`%d`) and the SMSC's text (`%A`).

Kannel's answers: 202 (`0: Accepted for delivery`, `3: Queued for later delivery`) is accepted;
503 and other 5xx, timeouts and connection errors are transient; every other status (400 bad
number or sender, 403 wrong credentials or a denied number) is rejected. A connection that breaks
*after* the request went out is transient too, although Kannel may have queued the message: which
is why the connection is reopened before it can go stale, and never retried here.

Configured by an Airflow connection (`sms_default`): host, port, login/password = the sendsms-user,
extra `{"default_sender": "...", "smsc": "...", "path": "/cgi-bin/sendsms", "timeout": 10}`.
"""

from __future__ import annotations

import http.client
import time
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from segmail import settings
from segmail.errors import SegmailError
from segmail.sms.gateway import SmsEncoding, SmsMessage, SmsSubmission, SubmitResult

DEFAULT_PATH = "/cgi-bin/sendsms"
DLR_MASK = 1 + 2 + 16  # delivered, failed, rejected by the SMSC
DLR_QUERY = "status=%d&answer=%A"  # read by the public app's /sms/dlr/<token>
IDLE_SECONDS = 20.0  # reopen a connection idle this long: Kannel may have closed it meanwhile


@dataclass(frozen=True, kw_only=True)
class KannelConfig:
    host: str
    port: int
    username: str
    password: str
    default_sender: str | None = None
    smsc: str | None = None  # route to this SMSC (Kannel's smsc-id), else Kannel's routing decides
    path: str = DEFAULT_PATH
    timeout: float = 10.0


def config_for(conn_id: str) -> KannelConfig:
    """The gateway's settings from an Airflow connection; a missing one is a user error."""
    info = settings.connection(conn_id)
    if info is None or not info.host:
        raise SegmailError(
            f"no SMS gateway connection {conn_id!r}: set AIRFLOW_CONN_{conn_id.upper()} (host, port,"
            ' login and password of a Kannel sendsms-user, extra {"default_sender": ...}) or add it in Airflow'
        )
    extra = info.extra
    return KannelConfig(
        host=info.host,
        port=int(info.port or 13013),
        username=info.login,
        password=info.password,
        default_sender=extra.get("default_sender") or None,
        smsc=extra.get("smsc") or None,
        path=extra.get("path") or DEFAULT_PATH,
        timeout=float(extra.get("timeout") or 10),
    )


def dlr_url(report_url: str) -> str:
    """The report URL with Kannel's escapes appended."""
    return f"{report_url}{'&' if '?' in report_url else '?'}{DLR_QUERY}"


def sendsms_query(message: SmsMessage, config: KannelConfig) -> str:
    """The query string of one sendsms request (a pure function: tested on its own)."""
    params = {
        "username": config.username,
        "password": config.password,
        "from": message.sender or config.default_sender or "",
        "to": message.to,
        "text": message.text,
        "charset": "UTF-8",
    }
    if message.encoding is SmsEncoding.UCS2:
        params["coding"] = "2"
    if config.smsc:
        params["smsc"] = config.smsc
    if message.report_url:
        params["dlr-mask"] = str(DLR_MASK)
        params["dlr-url"] = dlr_url(message.report_url)
    return urlencode(params, quote_via=quote)


def classify(status: int, reply: str) -> SmsSubmission:
    if status == 202 or (200 <= status < 300 and reply.startswith(("0:", "3:"))):
        return SmsSubmission(result=SubmitResult.ACCEPTED, code=status, reply=reply)
    if status >= 500:
        return SmsSubmission(result=SubmitResult.TRANSIENT, code=status, reply=reply)
    return SmsSubmission(result=SubmitResult.REJECTED, code=status, reply=reply)


class KannelGateway:
    """Submits messages to Kannel's smsbox over one reused HTTP connection."""

    def __init__(self, config: KannelConfig) -> None:
        self.config = config
        self._connection: http.client.HTTPConnection | None = None
        self._last_used = 0.0

    def __enter__(self) -> KannelGateway:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _open(self) -> http.client.HTTPConnection:
        if self._connection is not None and time.monotonic() - self._last_used > IDLE_SECONDS:
            self.close()
        if self._connection is None:
            self._connection = http.client.HTTPConnection(
                self.config.host, self.config.port, timeout=self.config.timeout
            )
        return self._connection

    def submit(self, message: SmsMessage) -> SmsSubmission:
        if not (message.sender or self.config.default_sender):
            return SmsSubmission(
                result=SubmitResult.REJECTED, reply="no sender: set one on the mailing or the connection"
            )
        target = f"{self.config.path}?{sendsms_query(message, self.config)}"
        try:
            connection = self._open()
            connection.request("GET", target, headers={"Connection": "keep-alive"})
            response = connection.getresponse()
            reply = response.read().decode("utf-8", errors="replace").strip()
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            return SmsSubmission(result=SubmitResult.TRANSIENT, reply=f"gateway unreachable: {exc!r}"[:500])
        self._last_used = time.monotonic()
        if response.will_close:
            self.close()
        return classify(response.status, reply[:500])


def gateway_for(conn_id: str) -> KannelGateway:
    """The gateway of an Airflow connection (`sms_default`): what SMS sending calls."""
    return KannelGateway(config_for(conn_id))
