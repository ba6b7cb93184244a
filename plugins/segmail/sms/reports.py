"""What comes back from phones through the gateway: delivery reports (DLRs) and STOP replies.

Delivery reports: every SMS carries its own report URL, `<SEGMAIL_PUBLIC_URL>/sms/dlr/<token>`, the
token signed for that delivery (segmail.feedback.tokens, purpose `r`), so a report names exactly
one delivery and cannot be forged. A final report moves the delivery from `sent` to `delivered`,
`failed` or `expired` and writes one `sms report` activity row. Statuses are final: a repeated or
later report changes nothing; intermediate reports (buffered, accepted by the SMSC) change nothing.

A gateway may report before the sending task has committed the gateway's answer (the row is still
`pending`; with fakesmsc about one message in ten). The report then waits for that commit, up to
SETTLE_SECONDS, so the row keeps the gateway's code and reply; after that (the task died between
submitting and committing) it lands on the `pending` row itself: the message was sent, and a row
that left `pending` is never sent again.

Stored totals: most reports arrive after the run's `summarize` task has stored its totals, so a
report that changed a delivery refreshes the stored totals of its run, as bounce processing does
(segmail.mailings.summary.refresh_totals) — throttled, see `TotalsRefresher`.

Inbound messages: a first word that is a stop word (STOP, STOPP, ABMELDEN, ARRÊT, BAJA, ...,
case and accents as phones send them) opts the number out of SMS for every contact with it (the
e-mail opt-out is separate), with when, the source `sms stop` and the run that last texted the
number; one `sms opt-out` activity row per contact. Repeats change nothing. The inbound URL is
public, so it carries a secret derived from the signing key (`inbound_url`): only the gateway
that was given the URL can opt numbers out.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import threading
import time
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum, StrEnum
from functools import lru_cache

from sqlalchemy import Connection, Engine, text

from segmail.contacts.activity import ActivityEntry, log_activity
from segmail.feedback.tokens import InvalidToken, TokenPurpose, TokenSigner
from segmail.store.db import default_engine
from segmail.store.models import ActivityKind, DeliveryStatus, OptOutSource

log = logging.getLogger(__name__)

REPORT_PATH = "/sms/dlr/"
TOTALS_REFRESH_SECONDS = 5.0
SETTLE_SECONDS = 3.0
_SETTLE_POLL = 0.05
INBOUND_PATH = "/sms/in/"
STOP_WORDS = frozenset(
    {
        # English, German, French, Spanish, Italian, Portuguese, Dutch, Scandinavian
        *("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT"),
        *("STOPP", "STOPPEN", "ABMELDEN", "ABBESTELLEN", "ABMELDUNG"),
        *("ARRET", "ARRÊT", "DESINSCRIRE", "DÉSINSCRIRE", "DESABONNER", "DÉSABONNER"),
        *("BAJA", "ALTO", "PARAR", "CANCELAR"),
        *("CANCELLA", "ANNULLA", "DISISCRIVI"),
        *("SAIR", "PARE"),
        *("AFMELDEN", "UITSCHRIJVEN"),
        *("AVSLUTA", "AVMELD"),
    }
)
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_NUMBER = re.compile(r"^\+[1-9][0-9]{5,14}$")


class KannelReport(IntEnum):
    """Kannel's DLR types (`%d` in a dlr-url)."""

    DELIVERED = 1
    FAILED = 2
    BUFFERED = 4
    SMSC_ACCEPTED = 8
    SMSC_REJECTED = 16


class ReportOutcome(StrEnum):
    APPLIED = "applied"  # the delivery's status changed
    ALREADY = "already"  # its status was final already: nothing changed
    IGNORED = "ignored"  # an intermediate report
    INVALID = "invalid"  # a forged, altered or expired token, or no such delivery: nothing changed


@dataclass(frozen=True)
class ReportResult:
    outcome: ReportOutcome
    detail: str
    status: DeliveryStatus | None = None
    run_id: int | None = None  # the run whose delivery changed (APPLIED only)


class InboundOutcome(StrEnum):
    OPTED_OUT = "opted out"
    ALREADY = "already opted out"
    NO_CONTACT = "no contact has this number"
    NOT_STOP = "not a stop word"  # and empty: nothing to keep
    REPLY_LOGGED = "reply logged"  # in the activity log of every contact with the number
    BAD_NUMBER = "not a phone number"


@dataclass(frozen=True)
class InboundResult:
    outcome: InboundOutcome
    number: str | None = None
    contacts: int = 0  # contacts opted out by this message, or whose log got the reply


# ---------------------------------------------------------------- URLs


def _signer() -> TokenSigner:
    from segmail import settings

    return TokenSigner(settings.signing_keys(), max_age_days=settings.current().token_max_age_days)


def _public_url() -> str | None:
    """The public app's address for the gateway: SEGMAIL_SMS_CALLBACK_URL when the gateway reaches it
    on an inner network (docker compose: http://segmail-public:8090), else SEGMAIL_PUBLIC_URL."""
    from segmail import settings

    config = settings.current()
    return config.sms_callback_url or config.public_url


class ReportUrls:
    """Report URLs for many messages, reading the settings once (a sending batch makes one)."""

    def __init__(self, *, signer: TokenSigner | None = None, public_url: str | None = None) -> None:
        self.public_url = public_url if public_url is not None else _public_url()
        self.signer = signer if signer is not None or not self.public_url else _signer()

    def __call__(self, delivery_id: int) -> str | None:
        if not self.public_url or self.signer is None:
            return None
        return f"{self.public_url}{REPORT_PATH}{self.signer.sign(TokenPurpose.SMS_REPORT, delivery_id)}"


@lru_cache(maxsize=4)
def _report_urls(public_url: str | None, signing_env: str | None) -> ReportUrls:
    """Settings read once per public URL and signing connection: the key may come from Airflow's
    secrets backend, far too slow to ask per message."""
    return ReportUrls(public_url=public_url or "")


def report_url(delivery_id: int) -> str | None:
    """Where the gateway reports on this delivery's SMS; None without SEGMAIL_PUBLIC_URL."""
    from segmail import settings

    signing_env = os.environ.get(f"AIRFLOW_CONN_{settings.SIGNING_CONN_ID.upper()}")
    return _report_urls(_public_url(), signing_env)(delivery_id)


def inbound_secret(keys: tuple[bytes, ...]) -> str:
    """The path secret of the inbound URL: an HMAC of the first signing key, never the key."""
    digest = hmac.digest(keys[0], b"segmail sms inbound", hashlib.sha256)[:16]
    return digest.hex()


def inbound_secret_ok(secret: str, keys: tuple[bytes, ...]) -> bool:
    """True for the secret of any signing key (inbound URLs survive a key rotation)."""
    return len(secret) == 32 and any(hmac.compare_digest(inbound_secret((key,)), secret) for key in keys)


def inbound_url(*, public_url: str | None = None, keys: tuple[bytes, ...] | None = None) -> str | None:
    """The URL to give the gateway for inbound messages (Kannel: an sms-service's get-url, with
    `?from=%p&text=%a` appended); None without a public URL or a signing key."""
    from segmail import settings

    public_url = public_url or _public_url()
    keys = keys or settings.signing_keys()
    if not public_url or not keys:
        return None
    return f"{public_url}{INBOUND_PATH}{inbound_secret(keys)}"


# ---------------------------------------------------------------- delivery reports


def classify(report: int, answer: str = "") -> DeliveryStatus | None:
    """The final status a Kannel DLR type stands for, None for intermediate ones. An SMPP report
    of an expired message comes as `failed` with `stat:EXPIRED` (or EXPIRD) in its text."""
    if report & KannelReport.DELIVERED:
        return DeliveryStatus.DELIVERED
    if report & (KannelReport.FAILED | KannelReport.SMSC_REJECTED):
        expired = re.search(r"stat:\s*EXPIRE?D", answer, re.IGNORECASE)
        return DeliveryStatus.EXPIRED if expired else DeliveryStatus.FAILED
    return None


_REPORT = text(
    "UPDATE segmail_deliveries SET status = :status, reason = :reason, reported_at = :now,"
    " sent_at = COALESCE(sent_at, :now), updated_at = :now"
    " WHERE id = :id AND status IN (:sent, :also) RETURNING contact_id, mailing_run_id,"
    " (SELECT r.mailing FROM segmail_mailing_runs r WHERE r.id = mailing_run_id) AS mailing"
)
_STATUS = text("SELECT status FROM segmail_deliveries WHERE id = :id")
# Reports come as fast as messages go, and Kannel's smsbox stops taking acknowledgements for new
# messages once its callbacks lag: a report need not wait for the WAL flush. A commit the server
# acknowledged survives any crash but the database server's own (its last fraction of a second),
# as for the sending task's writes (segmail.mailings.deliveries).
_NO_FLUSH_WAIT = text("SET LOCAL synchronous_commit = off")


def _reason(status: DeliveryStatus, report: int, answer: str) -> str | None:
    if status is DeliveryStatus.DELIVERED:
        return None
    words = "rejected by the SMS centre" if report & KannelReport.SMSC_REJECTED else status.value
    return f"delivery report: {words}" + (f" ({answer.strip()[:300]})" if answer.strip() else "")


class TotalsRefresher:
    """Refreshes a run's stored totals after its delivery reports, at most once per `interval`
    seconds per run (in this process).

    A refresh is a full recount of the run (`refresh_totals`), and reports come as fast as
    messages went: one recount per report would cost a run of N messages N recounts. Counting
    incrementally would instead have to keep the derived numbers (rates, per-language counts,
    `over_limits`) of the stored totals right by hand. So: the first report of a run refreshes at
    once; reports within the next `interval` seconds schedule one refresh at its end (a daemon
    timer), so the last report of a burst is in the stored totals at most `interval` seconds later.
    For a run still sending the refresh is one cheap SELECT that finds no finished run: its
    `summarize` task counts those reports itself.
    """

    def __init__(self, interval: float = TOTALS_REFRESH_SECONDS) -> None:
        self.interval = interval
        self._lock = threading.Lock()
        self._last: dict[int, float] = {}  # run id -> monotonic time of its last refresh
        self._due: set[int] = set()  # runs with a refresh scheduled

    def touched(self, run_id: int, *, engine: Engine | None = None) -> None:
        """A report changed a delivery of `run_id`: refresh now, or schedule one refresh."""
        with self._lock:
            if run_id in self._due:
                return
            wait = self._last.get(run_id, float("-inf")) + self.interval - time.monotonic()
            if wait > 0:
                self._due.add(run_id)
                timer = threading.Timer(wait, self._refresh, (run_id, engine))
                timer.daemon = True
                timer.start()
                return
            self._last[run_id] = time.monotonic()
        self._refresh(run_id, engine, scheduled=False)

    def _refresh(self, run_id: int, engine: Engine | None, scheduled: bool = True) -> None:
        from segmail.mailings.summary import refresh_totals

        if scheduled:
            with self._lock:
                self._due.discard(run_id)
                self._last[run_id] = time.monotonic()
        try:
            refresh_totals([run_id], engine=engine)
        except Exception:  # the report itself is recorded; the next refresh or feedback run catches up
            log.exception("refreshing the stored totals of run %s failed", run_id)


_totals = TotalsRefresher()


def apply_delivery_report(
    token: str,
    kannel_status: int,
    *,
    answer: str = "",
    signer: TokenSigner | None = None,
    engine: Engine | None = None,
    now: datetime | None = None,
    settle_seconds: float = SETTLE_SECONDS,
    totals: TotalsRefresher | None = None,
) -> ReportResult:
    """Record a gateway's report on the delivery its token names, and refresh its run's stored
    totals (throttled by `totals`, by default once per TOTALS_REFRESH_SECONDS); idempotent."""
    try:
        verified = (signer or _signer()).verify(token)
    except InvalidToken as exc:
        return ReportResult(ReportOutcome.INVALID, str(exc))
    if verified.purpose is not TokenPurpose.SMS_REPORT:
        return ReportResult(ReportOutcome.INVALID, "this link is not valid")
    status = classify(kannel_status, answer)
    if status is None:
        return ReportResult(ReportOutcome.IGNORED, f"intermediate report {kannel_status}")
    now = now or datetime.now(UTC)
    reason = _reason(status, kannel_status, answer)
    deadline = time.monotonic() + settle_seconds
    while True:  # each try its own short transaction: the sending task must be able to commit
        take_pending = time.monotonic() >= deadline
        with (engine or default_engine()).begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(_NO_FLUSH_WAIT)
            result = _record(conn, verified.delivery_id, status, reason, now, take_pending=take_pending)
        if result is not None:
            if result.run_id is not None:
                (totals or _totals).touched(result.run_id, engine=engine)
            return result
        time.sleep(_SETTLE_POLL)


def _record(
    conn: Connection,
    delivery_id: int,
    status: DeliveryStatus,
    reason: str | None,
    now: datetime,
    *,
    take_pending: bool,
) -> ReportResult | None:
    """Two statements in the usual case (a `sent` message): reports come at the rate messages go.
    None: try again, the row is still `pending` and may not be taken yet, or the sender committed
    between the UPDATE and the SELECT."""
    also = DeliveryStatus.PENDING if take_pending else DeliveryStatus.SENT
    params = {"status": status.value, "reason": reason, "now": now, "id": delivery_id}
    changed = conn.execute(_REPORT, {**params, "sent": DeliveryStatus.SENT.value, "also": also.value}).first()
    if changed is None:
        current = conn.execute(_STATUS, {"id": delivery_id}).scalar()
        if current is None:
            return ReportResult(ReportOutcome.INVALID, "this link is not valid")
        if current in (DeliveryStatus.PENDING, DeliveryStatus.SENT):  # sent: committed since the UPDATE
            return None
        return ReportResult(ReportOutcome.ALREADY, f"already {current}", DeliveryStatus(current))
    detail = reason or status.value
    entry = ActivityEntry(
        changed.contact_id, ActivityKind.SMS_REPORT, now, changed.mailing, changed.mailing_run_id, detail
    )
    log_activity(conn, entry)
    return ReportResult(ReportOutcome.APPLIED, detail, status, changed.mailing_run_id)


# ---------------------------------------------------------------- inbound messages


def stop_word(message: str) -> str | None:
    """The message's first word when it is a stop word (upper-cased), else None."""
    match = _WORD.search(unicodedata.normalize("NFC", message))
    if match is None:
        return None
    word = match.group().upper()
    plain = "".join(c for c in unicodedata.normalize("NFD", word) if not unicodedata.combining(c))
    return word if word in STOP_WORDS or plain in STOP_WORDS else None


def sender_number(number: str) -> str | None:
    """The sender in E.164: gateways pass `+4366...`, `004366...` or `4366...` (international
    without the plus); None for what cannot be an international number (short codes, names)."""
    digits = re.sub(r"[\s\-().]", "", number)
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    elif digits.isdigit():
        digits = "+" + digits
    return digits if _NUMBER.match(digits) else None


_LAST_RUN = text(
    "SELECT d.id, d.mailing_run_id, r.mailing FROM segmail_deliveries d"
    " JOIN segmail_mailing_runs r ON r.id = d.mailing_run_id"
    " WHERE d.mobile_e164 = :number AND d.status <> :skipped ORDER BY d.id DESC LIMIT 1"
)
_OPT_OUT = text(
    "UPDATE segmail_contacts SET sms_opt_out = :yes, sms_opt_out_at = :now, sms_opt_out_source = :source,"
    " sms_opt_out_run_id = :run, updated_at = :now"
    " WHERE mobile_e164 = :number AND sms_opt_out = :no RETURNING id"
)
_CONTACTS_WITH_NUMBER = text("SELECT COUNT(*) FROM segmail_contacts WHERE mobile_e164 = :number")
_CONTACT_IDS_WITH_NUMBER = text("SELECT id FROM segmail_contacts WHERE mobile_e164 = :number ORDER BY id")
_UNSUBSCRIBED = text(
    "UPDATE segmail_deliveries SET unsubscribed_at = :now WHERE id = :id AND unsubscribed_at IS NULL"
)


def apply_inbound_sms(
    number: str, message: str, *, engine: Engine | None = None, now: datetime | None = None
) -> InboundResult:
    """Opt `number` out of SMS when `message` starts with a stop word; any other text is a reply, kept
    in the activity log of the contacts with that number (a salesperson reads it there)."""
    e164 = sender_number(number)
    if e164 is None:
        return InboundResult(InboundOutcome.BAD_NUMBER)
    word = stop_word(message)
    if word is None and not message.strip():
        return InboundResult(InboundOutcome.NOT_STOP, e164)
    now = now or datetime.now(UTC)
    with (engine or default_engine()).begin() as conn:
        if word is None:
            return _log_reply(conn, e164, message.strip(), now)
        return _opt_out(conn, e164, word, now)


def _log_reply(conn: Connection, number: str, message: str, now: datetime) -> InboundResult:
    """One `sms reply` line per contact with the number, naming the mailing that last texted it.
    No run is set on the line: a contact may answer a run more than once, and every answer is kept."""
    last = conn.execute(_LAST_RUN, {"number": number, "skipped": DeliveryStatus.SKIPPED.value}).first()
    contacts = conn.execute(_CONTACT_IDS_WITH_NUMBER, {"number": number}).scalars().all()
    for contact_id in contacts:
        entry = ActivityEntry(
            contact_id,
            ActivityKind.SMS_REPLY,
            now,
            last.mailing if last else None,
            None,
            f"from {number}: {message}",
        )
        log_activity(conn, entry)
    if not contacts:
        return InboundResult(InboundOutcome.NO_CONTACT, number)
    return InboundResult(InboundOutcome.REPLY_LOGGED, number, len(contacts))


def _opt_out(conn: Connection, number: str, word: str, now: datetime) -> InboundResult:
    last = conn.execute(_LAST_RUN, {"number": number, "skipped": DeliveryStatus.SKIPPED.value}).first()
    run, mailing = (last.mailing_run_id, last.mailing) if last else (None, None)
    params = {"yes": True, "no": False, "now": now, "source": OptOutSource.SMS_STOP.value}
    changed = [row.id for row in conn.execute(_OPT_OUT, {**params, "run": run, "number": number})]
    if not changed:
        known = conn.execute(_CONTACTS_WITH_NUMBER, {"number": number}).scalar_one()
        return InboundResult(InboundOutcome.ALREADY if known else InboundOutcome.NO_CONTACT, number)
    if last is not None:
        conn.execute(_UNSUBSCRIBED, {"now": now, "id": last.id})
    for contact_id in changed:
        entry = ActivityEntry(
            contact_id, ActivityKind.SMS_OPT_OUT, now, mailing, run, f"{word} from {number}"
        )
        log_activity(conn, entry)
    return InboundResult(InboundOutcome.OPTED_OUT, number, len(changed))
