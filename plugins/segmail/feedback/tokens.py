"""Signed per-recipient tokens for unsubscribe links, `mailto:` unsubscribes and VERP bounce addresses.

A token names one delivery (run + contact) and what it is for; an HMAC-SHA256 over both, keyed by a
secret that never lives in code, makes it impossible to forge, alter or enumerate. Tokens are
lower-case letters, digits and dots only, short enough for an address's local part (≤ 64 with the
prefix) and safe where mail servers fold the local part's case.

Key rotation: the first key signs; every key verifies, so links in mails sent before a rotation keep
working while the previous key is still listed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from dataclasses import dataclass
from enum import StrEnum

from segmail.errors import SegmailError

_SIGNATURE_BYTES = 16  # 128 bits
_DAY = 86_400
_SHAPE = re.compile(r"^([a-z])\.([0-9a-z]{1,13})\.([0-9a-z]{1,6})\.([a-z2-7]{26})$")


class TokenPurpose(StrEnum):
    UNSUBSCRIBE = "u"
    TEST = "t"  # in test mails: a link that shows the page but changes nothing
    BOUNCE = "b"  # the VERP envelope sender
    SMS_REPORT = "r"  # an SMS's delivery-report URL (segmail.sms.reports)


class InvalidToken(SegmailError):
    """The token is malformed, altered, signed with an unknown key, or expired; nothing is revealed."""


@dataclass(frozen=True)
class VerifiedToken:
    purpose: TokenPurpose
    delivery_id: int
    issued_day: int


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
        if not number:
            return out


def _signature(key: bytes, message: str) -> str:
    digest = hmac.digest(key, message.encode(), hashlib.sha256)[:_SIGNATURE_BYTES]
    return base64.b32encode(digest).decode().rstrip("=").lower()


@dataclass(frozen=True)
class TokenSigner:
    """Signs with keys[0], verifies with any key; tokens older than max_age_days are refused."""

    keys: tuple[bytes, ...]
    max_age_days: int = 730

    def __post_init__(self) -> None:
        if not self.keys or any(len(key) < 16 for key in self.keys):
            raise SegmailError("segmail's signing key must be set and at least 16 characters long")

    def sign(self, purpose: TokenPurpose, delivery_id: int, *, now: float | None = None) -> str:
        if delivery_id < 0:
            raise ValueError("a delivery id is never negative")
        day = int((time.time() if now is None else now) // _DAY)
        message = f"{purpose.value}.{_base36(delivery_id)}.{_base36(day)}"
        return f"{message}.{_signature(self.keys[0], message)}"

    def verify(self, token: str, *, now: float | None = None) -> VerifiedToken:
        match = _SHAPE.match(token.strip().lower()) if len(token) <= 80 else None
        if match is None:
            raise InvalidToken("this link is not valid")
        purpose, delivery, day, signature = match.groups()
        message = f"{purpose}.{delivery}.{day}"
        if not any(hmac.compare_digest(_signature(key, message), signature) for key in self.keys):
            raise InvalidToken("this link is not valid")
        try:
            verified = VerifiedToken(TokenPurpose(purpose), int(delivery, 36), int(day, 36))
        except ValueError:
            raise InvalidToken("this link is not valid") from None
        today = int((time.time() if now is None else now) // _DAY)
        if today - verified.issued_day > self.max_age_days:
            raise InvalidToken("this link has expired")
        return verified
