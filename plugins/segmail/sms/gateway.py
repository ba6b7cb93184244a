"""The SMS gateway interface: what sending needs from any gateway, whatever protocol is behind it.

`KannelGateway` (segmail.sms.kannel) is the real implementation, speaking Kannel's HTTP `sendsms`
interface; `FakeSmsGateway` (tests) records submissions for unit tests. A gateway only *accepts* a
message for delivery: whether it reached the handset arrives later as a delivery report (DLR) on the
public app's URL carried in `SmsMessage.report_url`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class SmsEncoding(StrEnum):
    GSM7 = "GSM-7"
    UCS2 = "UCS-2"


class SubmitResult(StrEnum):
    """What the gateway said to one submission."""

    ACCEPTED = "accepted"  # queued by the gateway; the delivery report follows
    REJECTED = "rejected"  # permanent: a retry would be refused again (bad number, bad sender ...)
    TRANSIENT = "transient"  # the gateway is busy or unreachable: retry later


@dataclass(frozen=True, kw_only=True)
class SmsMessage:
    to: str  # E.164, e.g. +436641234567
    sender: str  # alphanumeric sender ID (max 11 characters) or a number
    text: str
    encoding: SmsEncoding
    report_url: str | None = None  # where delivery reports for this message are posted (signed token)


@dataclass(frozen=True, kw_only=True)
class SmsSubmission:
    result: SubmitResult
    code: int | None = None  # the gateway's status (Kannel: HTTP status of sendsms)
    reply: str = ""  # the gateway's words, kept on the delivery row


class SmsGateway(Protocol):
    """Submit messages one by one; a context manager so connections are reused and closed."""

    def submit(self, message: SmsMessage) -> SmsSubmission: ...

    def close(self) -> None: ...

    def __enter__(self) -> SmsGateway: ...

    def __exit__(self, *exc: object) -> None: ...
