"""What one message in the bounce mailbox is: a bounce, a complaint, a `mailto:` unsubscribe, an
auto-reply or something unrecognised. Pure: bytes in, a `Report` out, no database, no network.

The recognisers run in order and the first that knows the message wins:

1. an ARF complaint (RFC 5965, `multipart/report; report-type=feedback-report`);
2. a DSN (RFC 3464, `report-type=delivery-status`): one `Failure` per failed or delayed recipient;
3. a mail to the `mailto:` unsubscribe address (`unsubscribe+TOKEN@...`; subject and body irrelevant);
4. an auto-reply (out of office; RFC 3834 headers or the usual subjects) that does not look like a bounce;
5. a non-standard bounce (old Exchange, Exim, qmail, Gmail's text) recognised by flufl.bounce's
   detectors, with the detector and its confidence;
6. anything else: unrecognised.

Hard or soft: a failed recipient with a 5.x.x status is hard, 4.x.x or `Action: delayed` is soft.
X.2.2 (mailbox full) is soft whatever its class: RFC 3463 calls it "a persistent transient
failure". A permanent failure that only a generic heuristic (low confidence) found counts as soft,
so a misread text can never suppress an address on its own.

A report names its delivery by the signed token in the address it was sent to (VERP,
`bounces+TOKEN@bounce-domain`, or `unsubscribe+TOKEN@...`) or, without one, by the segmail
Message-ID it quotes (`<segmail.RUN.CONTACT@domain>`); `matching.py` checks both.
"""

from __future__ import annotations

import email
import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.message import Message
from email.parser import BytesHeaderParser
from email.utils import getaddresses, parseaddr, parsedate_to_datetime
from enum import StrEnum

SEGMAIL_MESSAGE_ID = re.compile(rb"<segmail\.(\d{1,18})\.(\d{1,18})@[A-Za-z0-9.-]{1,253}>")
_RECIPIENT_HEADERS = ("delivered-to", "x-original-to", "envelope-to", "x-envelope-to", "to", "cc")
_MAX_KEY = 250


class ReportKind(StrEnum):
    BOUNCE = "bounce"
    COMPLAINT = "complaint"
    UNSUBSCRIBE = "unsubscribe"
    AUTO_REPLY = "auto-reply"
    UNRECOGNISED = "unrecognised"


class Severity(StrEnum):
    HARD = "hard"
    SOFT = "soft"


class Confidence(StrEnum):
    HIGH = "high"  # a standard format (RFC 3464, RFC 5965) or a detector without heuristics
    MEDIUM = "medium"  # a provider-specific heuristic
    LOW = "low"  # a generic text heuristic


@dataclass(frozen=True)
class FeedbackAddresses:
    """Where reports are sent: the VERP bounce address and the `mailto:` unsubscribe address."""

    bounce_domain: str | None = None
    bounce_local_part: str = "bounces"
    unsubscribe_mailto: str | None = None  # e.g. unsubscribe@example.com

    @classmethod
    def from_settings(cls) -> FeedbackAddresses:
        from segmail import settings

        config = settings.current()
        return cls(config.bounce_domain, config.bounce_local_part, config.unsubscribe_mailto)

    def verp_tokens(self, text: str) -> list[str]:
        if not self.bounce_domain:
            return []
        return _tokens(text, self.bounce_local_part, self.bounce_domain)

    def mailto_tokens(self, text: str) -> list[str]:
        if not self.unsubscribe_mailto:
            return []
        local, _, domain = self.unsubscribe_mailto.partition("@")
        return _tokens(text, local, domain)


def _tokens(text: str, local: str, domain: str) -> list[str]:
    """Whatever follows `local+` in addresses at `domain`: a token to verify (a forged one fails)."""
    pattern = rf"(?<![\w.+-]){re.escape(local)}\+([^@\s<>\"',;]{{1,200}})@{re.escape(domain)}(?![\w-])"
    return list(dict.fromkeys(t.lower() for t in re.findall(pattern, text, re.IGNORECASE)))


@dataclass(frozen=True)
class Failure:
    """One recipient a bounce reports: its addresses (original first), how bad, and why."""

    addresses: tuple[str, ...]
    severity: Severity
    status: str | None = None  # enhanced status code, e.g. 5.1.1
    action: str | None = None  # failed | delayed
    diagnostic: str | None = None

    @property
    def summary(self) -> str:
        """'5.1.1 unknown user: "x@y"': what the activity log and the suppression say."""
        if self.diagnostic:
            in_text = self.status is None or self.status in self.diagnostic
            text = self.diagnostic if in_text else f"{self.status} {self.diagnostic}"
        else:
            text = self.status or f"{self.action or 'failed'} (no status given)"
        return text[:300]


@dataclass(frozen=True)
class Report:
    key: str  # the report's own Message-ID; sha256:<hex> of its bytes when it has none
    kind: ReportKind
    date: datetime | None
    sender: str
    subject: str
    failures: tuple[Failure, ...] = ()
    addresses: tuple[str, ...] = ()  # who complained (ARF Original-Rcpt-To) or whose mail failed
    tokens: tuple[str, ...] = ()  # signed tokens of the addresses it names, not yet verified
    message_ids: tuple[str, ...] = ()  # the segmail Message-IDs it quotes, lower-cased
    detector: str | None = None
    confidence: Confidence | None = None
    feedback_type: str | None = None  # ARF: abuse, fraud, ...
    note: str | None = None  # why nothing is done with it, when nothing is

    @property
    def severity(self) -> Severity | None:
        """The worst of its failures."""
        if not self.failures:
            return None
        return Severity.HARD if any(f.severity == Severity.HARD for f in self.failures) else Severity.SOFT


# ---------------------------------------------------------------- the message


@dataclass(frozen=True)
class _Incoming:
    """A parsed message and what every recogniser may need of it."""

    message: Message
    raw: bytes
    base: Report
    addresses: FeedbackAddresses

    def header_text(self, names: Iterable[str]) -> str:
        return "\n".join(str(value) for name in names for value in self.message.get_all(name, []))


def _report_key(message: Message, raw: bytes) -> str:
    message_id = " ".join(str(message.get("Message-ID", "")).split())
    if message_id and len(message_id) <= _MAX_KEY:
        return message_id
    return "sha256:" + hashlib.sha256(message_id.encode() if message_id else raw).hexdigest()


def _date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(str(value))
    except (TypeError, ValueError, IndexError):
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def _segmail_message_ids(message: Message, raw: bytes) -> tuple[str, ...]:
    """Every segmail Message-ID the report quotes, in its bytes or in its decoded parts."""
    own = str(message.get("Message-ID", "")).lower()
    found: dict[str, None] = {}
    chunks = [raw] + [
        part.get_payload(decode=True) or b"" for part in message.walk() if not part.is_multipart()
    ]
    for chunk in chunks:
        for match in SEGMAIL_MESSAGE_ID.finditer(chunk):
            message_id = match.group(0).decode().lower()
            if message_id not in own:
                found[message_id] = None
    return tuple(found)


def parse_segmail_message_id(message_id: str) -> tuple[int, int] | None:
    """(run, contact) of `<segmail.RUN.CONTACT@domain>`; None for any other Message-ID."""
    match = SEGMAIL_MESSAGE_ID.fullmatch(message_id.encode(errors="replace"))
    return (int(match.group(1)), int(match.group(2))) if match else None


def _parse(raw: bytes, addresses: FeedbackAddresses) -> _Incoming:
    message = email.message_from_bytes(raw)
    base = Report(
        key=_report_key(message, raw),
        kind=ReportKind.UNRECOGNISED,
        date=_date(message.get("Date")),
        sender=parseaddr(str(message.get("From", "")))[1],
        subject=" ".join(str(message.get("Subject", "")).split())[:500],
        message_ids=_segmail_message_ids(message, raw),
    )
    return _Incoming(message, raw, base, addresses)


def _report_type(message: Message) -> str | None:
    if message.get_content_type() != "multipart/report":
        return None
    return str(message.get_param("report-type", "")).lower() or None


def _fields(part: Message) -> list[Message]:
    """The field blocks of a message/delivery-status or message/feedback-report part."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [block for block in payload if isinstance(block, Message)]
    text = payload if isinstance(payload, str) else ""
    return [
        email.message_from_string(block.strip() + "\n")
        for block in re.split(r"\n\s*\n", text)
        if block.strip()
    ]


def _address(field: str | None) -> str | None:
    """`rfc822; <x@y>` -> `x@y`."""
    if not field:
        return None
    value = str(field).split(";", 1)[-1].strip().strip("<>").strip()
    return value.lower() if "@" in value else None


def _unfold(value: object) -> str | None:
    return " ".join(str(value).split()) if value else None


# ---------------------------------------------------------------- RFC 5965: complaints

COMPLAINT_TYPES = frozenset({"abuse", "fraud", "virus", "other"})


def _attached_original(message: Message) -> Message | None:
    for part in message.walk():
        content_type = part.get_content_type()
        if content_type == "message/rfc822":
            payload = part.get_payload()
            return payload[0] if isinstance(payload, list) and payload else None
        if content_type == "text/rfc822-headers":
            return BytesHeaderParser().parsebytes(part.get_payload(decode=True) or b"")
    return None


def arf_complaint(incoming: _Incoming) -> Report | None:
    message = incoming.message
    if _report_type(message) != "feedback-report":
        return None
    part = next((p for p in message.walk() if p.get_content_type() == "message/feedback-report"), None)
    fields = next(iter(_fields(part)), Message()) if part is not None else Message()
    feedback_type = str(fields.get("Feedback-Type", "abuse")).strip().lower()
    original = _attached_original(message) or Message()
    complainants = [a for _, a in getaddresses(fields.get_all("Original-Rcpt-To", [])) if "@" in a]
    complainants += [a for _, a in getaddresses(original.get_all("To", [])) if "@" in a]
    where = "\n".join(
        str(v)
        for v in (
            fields.get("Original-Mail-From"),
            original.get("Return-Path"),
            original.get("List-Unsubscribe"),
        )
    )
    is_complaint = feedback_type in COMPLAINT_TYPES
    return replace(
        incoming.base,
        kind=ReportKind.COMPLAINT if is_complaint else ReportKind.UNRECOGNISED,
        addresses=tuple(dict.fromkeys(a.lower() for a in complainants)),
        tokens=tuple(incoming.addresses.verp_tokens(where) + incoming.addresses.mailto_tokens(where)),
        detector="rfc5965",
        confidence=Confidence.HIGH,
        feedback_type=feedback_type,
        note=None if is_complaint else f"feedback report of type {feedback_type!r}: not a complaint",
    )


# ---------------------------------------------------------------- RFC 3464: delivery status

_ENHANCED = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_BASIC = re.compile(r"\b([245])\d\d\b")


def severity_of(action: str | None, status: str | None, diagnostic: str | None) -> Severity | None:
    """Hard or soft for one DSN recipient; None when it was delivered, relayed or expanded."""
    action = (action or "failed").strip().lower()
    if action == "delayed":
        return Severity.SOFT
    if action != "failed":
        return None
    code = _ENHANCED.search(status or "") or _ENHANCED.search(diagnostic or "")
    if code:
        persistent_transient = (code.group(2), code.group(3)) == ("2", "2")  # mailbox full
        return Severity.SOFT if code.group(1) == "4" or persistent_transient else Severity.HARD
    basic = _BASIC.search(diagnostic or "")
    return Severity.SOFT if basic and basic.group(1) == "4" else Severity.HARD


def _failure(block: Message) -> Failure | None:
    status = _unfold(block.get("Status"))
    diagnostic = _unfold(block.get("Diagnostic-Code"))
    if diagnostic and ";" in diagnostic:
        diagnostic = diagnostic.split(";", 1)[1].strip()
    action = _unfold(block.get("Action"))
    severity = severity_of(action, status, diagnostic)
    addresses = [_address(block.get("Original-Recipient")), _address(block.get("Final-Recipient"))]
    addresses = [a for a in dict.fromkeys(addresses) if a]
    if severity is None or not addresses:
        return None
    return Failure(tuple(addresses), severity, status, action and action.lower(), diagnostic)


def delivery_status(incoming: _Incoming) -> Report | None:
    message = incoming.message
    if _report_type(message) != "delivery-status":
        return None
    part = next((p for p in message.walk() if p.get_content_type() == "message/delivery-status"), None)
    if part is None:
        return None  # a report without its machine-readable part: left to the heuristics
    failures = tuple(f for block in _fields(part)[1:] if (f := _failure(block)) is not None)
    base = replace(incoming.base, detector="rfc3464", confidence=Confidence.HIGH)
    if not failures:
        return replace(base, note="delivery report without a failed or delayed recipient")
    return _bounce(incoming, base, failures)


def _bounce(incoming: _Incoming, base: Report, failures: tuple[Failure, ...]) -> Report:
    original = _attached_original(incoming.message)
    where = incoming.header_text(_RECIPIENT_HEADERS)
    if original is not None:
        where += "\n" + str(original.get("Return-Path", ""))
    return replace(
        base,
        kind=ReportKind.BOUNCE,
        failures=failures,
        addresses=tuple(dict.fromkeys(a for f in failures for a in f.addresses)),
        tokens=tuple(incoming.addresses.verp_tokens(where)),
    )


# ---------------------------------------------------------------- mailto unsubscribe, auto-replies

_AUTO_REPLY_SUBJECT = re.compile(
    r"^\s*(auto(matic)?[ -]?(reply|response|antwort)|out of (the )?office|abwesenheit|"
    r"r[ée]ponse automatique|automatische antwort|auto:|ooo\b)",
    re.IGNORECASE,
)
_BOUNCE_SENDER = re.compile(r"^(mailer-daemon|postmaster|mail-daemon|mailer)@", re.IGNORECASE)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|undelivered|delivery (status notification|failure|has failed)|failure notice|"
    r"returned mail|mail delivery failed|nicht zustellbar|unzustellbar",
    re.IGNORECASE,
)


def mailto_unsubscribe(incoming: _Incoming) -> Report | None:
    tokens = incoming.addresses.mailto_tokens(incoming.header_text(_RECIPIENT_HEADERS))
    if not tokens or _auto_submitted(incoming.message) == "auto-replied":
        return None
    return replace(incoming.base, kind=ReportKind.UNSUBSCRIBE, tokens=tuple(tokens), detector="mailto")


def _auto_submitted(message: Message) -> str | None:
    value = str(message.get("Auto-Submitted", "")).strip().lower()
    return value if value and value != "no" else None


def _looks_like_bounce(report: Report) -> bool:
    return bool(_BOUNCE_SENDER.match(report.sender) or _BOUNCE_SUBJECT.search(report.subject))


def auto_reply(incoming: _Incoming) -> Report | None:
    message, base = incoming.message, incoming.base
    marked = (
        _auto_submitted(message) == "auto-replied"
        or any(message.get(name) for name in ("X-Autoreply", "X-Autorespond", "X-Auto-Reply"))
        or str(message.get("Precedence", "")).strip().lower() == "auto_reply"
        or bool(_AUTO_REPLY_SUBJECT.search(base.subject))
    )
    if not marked or _looks_like_bounce(base):
        return None
    return replace(base, kind=ReportKind.AUTO_REPLY, detector="rfc3834", note="auto-reply: nothing to do")


# ---------------------------------------------------------------- non-standard bounces (flufl.bounce)


def _flufl_detectors() -> list[tuple[type, Confidence]]:
    """flufl.bounce's detectors in its own order, most authoritative first, with a confidence by
    its own grouping. The list is flufl's (pinned 6.0.0; a test guards its shape)."""
    from flufl.bounce._scan import _DETECTORS

    exact = {"DSN", "Exim", "Sina"}
    generic = {"SimpleMatch", "SimpleWarning", "LLNL"}
    return [
        (
            detector,
            Confidence.HIGH
            if detector.__name__ in exact
            else Confidence.LOW
            if detector.__name__ in generic
            else Confidence.MEDIUM,
        )
        for detector in _DETECTORS
    ]


def _text_status(message: Message) -> tuple[str | None, str | None]:
    """The first enhanced status code in the report's text and the line it is on, if any."""
    for part in message.walk():
        if part.get_content_type() != "text/plain":
            continue
        text = (part.get_payload(decode=True) or b"").decode("utf-8", "replace")
        for line in text.splitlines():
            if match := _ENHANCED.search(line):
                return match.group(0), " ".join(line.split())[:300]
    return None, None


def _flufl_failures(
    incoming: _Incoming, found: tuple[Iterable[bytes], Iterable[bytes]], confidence: Confidence
) -> tuple[Failure, ...]:
    temporary, permanent = found
    status, diagnostic = _text_status(incoming.message)
    hard = Severity.HARD if confidence != Confidence.LOW else Severity.SOFT
    failures = [Failure((a.decode().lower(),), hard, status, "failed", diagnostic) for a in sorted(permanent)]
    failures += [
        Failure((a.decode().lower(),), Severity.SOFT, status, "delayed", diagnostic)
        for a in sorted(temporary)
    ]
    return tuple(failures)


def heuristic_bounce(incoming: _Incoming) -> Report | None:
    for detector, confidence in _flufl_detectors():
        try:
            temporary, permanent = detector().process(incoming.message)
        except Exception:  # a detector that chokes on an odd message has not recognised it
            continue
        if temporary or permanent:
            base = replace(incoming.base, detector=f"flufl.bounce:{detector.__name__}", confidence=confidence)
            return _bounce(incoming, base, _flufl_failures(incoming, (temporary, permanent), confidence))
    return None


# ---------------------------------------------------------------- classify

RECOGNISERS: tuple[Callable[[_Incoming], Report | None], ...] = (
    arf_complaint,
    delivery_status,
    mailto_unsubscribe,
    auto_reply,
    heuristic_bounce,
)


def classify(raw: bytes, addresses: FeedbackAddresses) -> Report:
    """The report one message of the bounce mailbox is. Never raises on a malformed message."""
    try:
        incoming = _parse(raw, addresses)
    except Exception as exc:  # not even parseable: keep it, say why
        key = "sha256:" + hashlib.sha256(raw).hexdigest()
        return Report(key, ReportKind.UNRECOGNISED, None, "", "", note=f"unreadable message: {exc}")
    for recognise in RECOGNISERS:
        try:
            report = recognise(incoming)
        except Exception as exc:  # a malformed part must not stop the mailbox
            return replace(incoming.base, note=f"{recognise.__name__} failed on it: {exc}")
        if report is not None:
            return report
    return replace(incoming.base, note="not a bounce, complaint, unsubscribe or auto-reply")
