"""Freezing a run's audience: one delivery row per contact, created once when the run starts.

The rows are the run's memory of whom it mails: a retried or cleared task finds the run of its
DAG run and returns it unchanged, and contacts imported later do not join it. A DAG run with a
logical date (a scheduled interval, `airflow dags test <date>`) also finds the run frozen for that
date by an earlier DAG run that was deleted and created again, so an interval is sent at most once;
runs without one (manual triggers that give none, asset-triggered runs) and dry runs are new runs. A contact that is
not mailed gets a `skipped` row with the reason (opted out, suppressed, no or unusable address, an
address already mailed in this run); contacts left out by the language filter or the recipient cap get
no row and are counted in the run's options.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, Row, bindparam, text

from segmail.addresses import safe_address
from segmail.errors import NotFound
from segmail.mailings.definition import Mailing
from segmail.mailings.deliveries import batched_rows
from segmail.store.db import bulk_insert, default_engine, is_postgres
from segmail.store.models import Channel, DeliveryStatus, RunStatus

log = logging.getLogger(__name__)

DELIVERY_COLUMNS = (
    "mailing_run_id",
    "contact_id",
    "segment_id",
    "email",
    "language",
    "status",
    "reason",
    "attempts",
    "updated_at",
)
_CANDIDATES = (
    "SELECT c.id, c.email, c.email_key, c.email_opt_out, c.language, m.segment_id, s.reason AS suppressed"
    " FROM segmail_contacts c"
    " JOIN (SELECT contact_id, MIN(segment_id) AS segment_id FROM segmail_memberships"
    "       WHERE segment_id IN :include GROUP BY contact_id) m ON m.contact_id = c.id"
    " LEFT JOIN segmail_suppressions s ON s.address_key = c.email_key"
)
_NOT_EXCLUDED = (
    " WHERE NOT EXISTS (SELECT 1 FROM segmail_memberships x WHERE x.contact_id = c.id"
    "  AND x.segment_id IN :exclude)"
)


def skip_reason(
    *,
    email: str | None,
    email_key: str | None,
    opted_out: bool,
    opted_out_addresses: set[str],
    addressed: set[str],
    suppressed: str | None = None,
) -> str | None:
    """Why a contact of the audience is not mailed, or None if it is."""
    if opted_out:
        return "opted out"
    if email_key in opted_out_addresses:  # an opt-out belongs to the address, not only the contact
        return "opted out: another contact with this address opted out"
    if suppressed:
        return f"suppressed: {suppressed}"
    if not email:
        return "no e-mail address"
    if safe_address(email) is None:
        if email.isascii():
            return f"invalid e-mail address {email!r}"
        return f"internationalized address {email!r} needs SMTPUTF8, which segmail does not send"
    if email_key in addressed:
        return "duplicate address: another contact of this run gets the mail at this address"
    return None


@dataclass
class Selection:
    """The delivery rows of the run being frozen, and the counts of contacts left without one.

    The language filter, the recipient cap and one row per contact (`skipped` with the reason, or
    `pending`) are the same for every channel; a channel says, in `unpack`, what a candidate row
    holds, where the message goes, the key that makes two contacts one recipient (an address, a
    number) and why a contact gets nothing (segmail.sms.audience has the SMS one).
    """

    mailing: Mailing
    wanted: set[str] | None
    max_recipients: int | None
    opted_out_addresses: set[str] = field(default_factory=set)
    deliveries: list[tuple] = field(default_factory=list)
    addressed: set[str] = field(default_factory=set)  # the keys of contacts that get the message
    sendable: int = 0
    excluded_by_language: int = 0
    over_max_recipients: int = 0
    variants: dict[str | None, str] = field(default_factory=dict)  # language tag -> variant

    @classmethod
    def of(
        cls, mailing: Mailing, *, languages: list[str] | None, max_recipients: int | None, **more
    ) -> Selection:
        return cls(
            mailing=mailing,
            wanted={lang.casefold() for lang in languages} if languages else None,
            max_recipients=max_recipients,
            **more,
        )

    def unpack(self, contact: Row) -> tuple[int, int, str | None, str | None, str | None, str | None]:
        """(contact id, segment id, target, recipient key, language, skip reason) of an e-mail candidate."""
        contact_id, email, email_key, opted_out, language, segment_id, suppressed = contact
        reason = skip_reason(
            email=email,
            email_key=email_key,
            opted_out=opted_out,
            opted_out_addresses=self.opted_out_addresses,
            addressed=self.addressed,
            suppressed=suppressed,
        )
        return contact_id, segment_id, email, email_key, language, reason

    def add(self, contact: Row) -> None:
        contact_id, segment_id, target, key, language, reason = self.unpack(contact)
        variant = self.variants.get(language)
        if variant is None:
            variant = self.variants[language] = self.mailing.variant_for(language)
        if self.wanted is not None and variant.casefold() not in self.wanted:
            self.excluded_by_language += 1
            return
        if reason is None and self.max_recipients and self.sendable >= self.max_recipients:
            self.over_max_recipients += 1
            return
        if reason is None:
            self.sendable += 1
            self.addressed.add(key)
        status = DeliveryStatus.SKIPPED if reason else DeliveryStatus.PENDING
        self.deliveries.append((contact_id, segment_id, target, variant, status, reason))

    def select(self, contacts: Sequence[Row], *, languages: list[str] | None) -> tuple[list[tuple], dict]:
        """Every contact added: the rows, and the run's options (what the filter and the cap left out)."""
        for contact in contacts:
            self.add(contact)
        options = {
            "languages": languages or "all",
            "max_recipients": self.max_recipients or None,
            "excluded_by_language": self.excluded_by_language,
            "over_max_recipients": self.over_max_recipients,
        }
        return self.deliveries, options


def select_deliveries(
    contacts: Sequence[Row],
    mailing: Mailing,
    *,
    languages: list[str] | None,
    max_recipients: int | None,
) -> tuple[list[tuple], dict]:
    """(contact_id, segment_id, email, language, status, reason) per contact, and the run's options."""
    selection = Selection.of(
        mailing,
        languages=languages,
        max_recipients=max_recipients,
        opted_out_addresses={c.email_key for c in contacts if c.email_opt_out and c.email_key},
    )
    return selection.select(contacts, languages=languages)


def _segment_ids(conn: Connection, names: list[str]) -> list[int]:
    keys = [n.casefold() for n in names]
    found = dict(conn.execute(text("SELECT name_key, id FROM segmail_segments")).all())
    missing = [n for n, k in zip(names, keys, strict=True) if k not in found]
    if missing:
        raise NotFound(f"audience segment(s) not found: {', '.join(missing)}")
    return [found[k] for k in keys]


def load_candidates(conn: Connection, mailing: Mailing, *, select: str = _CANDIDATES) -> list[Row]:
    """Contacts in any audience segment and in no excluded one, by id, with the segment they came by
    (`select`: the columns an e-mail run needs, or an SMS run's, segmail.sms.audience)."""
    include = _segment_ids(conn, mailing.audience.segments)
    exclude = (
        _segment_ids(conn, mailing.audience.exclude_segments) if mailing.audience.exclude_segments else []
    )
    query = text(select + (_NOT_EXCLUDED if exclude else "") + " ORDER BY c.id")
    params = [bindparam("include", expanding=True)]
    if exclude:
        params.append(bindparam("exclude", expanding=True))
    return conn.execute(query.bindparams(*params), {"include": include, "exclude": exclude}).all()


_RUN_OF_DAG_RUN = text("SELECT id FROM segmail_mailing_runs WHERE mailing = :m AND dag_run_id = :d")
_RUN_OF_INTERVAL = text(
    "SELECT id, dag_run_id FROM segmail_mailing_runs WHERE mailing = :m AND logical_date = :l"
)
_CLAIM_RUN = text("UPDATE segmail_mailing_runs SET dag_run_id = :d WHERE id = :r")


def _existing_run(conn: Connection, slug: str, dag_run_id: str, logical_date: datetime | None) -> int | None:
    """The run of this DAG run; else the run of its interval, which this DAG run then carries on
    (its monitoring tab and a retry find it by the new DAG run id)."""
    run_id = conn.execute(_RUN_OF_DAG_RUN, {"m": slug, "d": dag_run_id}).scalar()
    if run_id is not None or logical_date is None:
        return run_id
    earlier = conn.execute(_RUN_OF_INTERVAL, {"m": slug, "l": logical_date}).first()
    if earlier is None:
        return None
    conn.execute(_CLAIM_RUN, {"d": dag_run_id, "r": earlier.id})
    log.info(
        "mailing %s: the interval %s was frozen as run %s by DAG run %s; DAG run %s carries it on and"
        " sends only what is still pending",
        slug,
        logical_date.isoformat(),
        earlier.id,
        earlier.dag_run_id,
        dag_run_id,
    )
    return earlier.id


def _insert_run(
    conn: Connection,
    slug: str,
    *,
    dag_run_id: str,
    logical_date: datetime | None,
    dry_run: bool,
    options: dict,
    now: datetime,
    channel: Channel = Channel.EMAIL,
) -> int:
    return conn.execute(
        text(
            "INSERT INTO segmail_mailing_runs (mailing, dag_run_id, logical_date, status, dry_run, options,"
            " channel, created_at) VALUES (:m, :d, :l, :frozen, :dry, :o, :channel, :now) RETURNING id"
        ),
        {
            "channel": channel.value,
            "m": slug,
            "d": dag_run_id,
            "l": logical_date,
            "frozen": RunStatus.FROZEN,
            "dry": dry_run,
            "o": json.dumps(options),
            "now": now,
        },
    ).scalar_one()


def _select_for_channel(
    conn: Connection, mailing: Mailing, *, languages: list[str] | None, max_recipients: int | None
) -> tuple[tuple[str, ...], list[tuple], dict]:
    """(delivery columns, rows, options): an e-mail run's by address, an SMS run's by number."""
    if mailing.channel == Channel.SMS:
        from segmail.sms import audience as sms_audience

        return sms_audience.select_sms_run(conn, mailing, languages=languages, max_recipients=max_recipients)
    deliveries, options = select_deliveries(
        load_candidates(conn, mailing), mailing, languages=languages, max_recipients=max_recipients
    )
    return DELIVERY_COLUMNS, deliveries, options


def freeze_audience(
    mailing: Mailing,
    *,
    dag_run_id: str,
    logical_date: datetime | None = None,
    dry_run: bool = False,
    languages: list[str] | None = None,
    max_recipients: int | None = None,
    engine: Engine | None = None,
    now: datetime | None = None,
    batch_size: int | None = None,
) -> int:
    """Create the run's delivery rows once; a retried or cleared task returns the same run unchanged,
    and so does a new DAG run for the `logical_date` of an earlier one (never for a dry run).
    `batch_size`: plan the run's batches with its rows (`deliveries.batched_rows`), for a run that no
    approval narrows before it is sent."""
    engine = engine or default_engine()
    now = now or datetime.now(UTC)
    logical_date = None if dry_run else logical_date
    with engine.begin() as conn:
        existing = _existing_run(conn, mailing.slug, dag_run_id, logical_date)
        if existing is not None:
            return existing
        columns, deliveries, options = _select_for_channel(
            conn, mailing, languages=languages, max_recipients=max_recipients
        )
        run_id = _insert_run(
            conn,
            mailing.slug,
            dag_run_id=dag_run_id,
            logical_date=logical_date,
            dry_run=dry_run,
            options=options,
            now=now,
            channel=mailing.channel,
        )
        rows = [(run_id, *d, 0, now) for d in deliveries]
        if batch_size:
            columns, rows = batched_rows(conn, run_id, columns, rows, batch_size=batch_size)
        bulk_insert(conn, "segmail_deliveries", columns, rows)
        if is_postgres(conn.engine):  # fresh statistics, or the run's first queries plan as if it were empty
            conn.execute(text("ANALYZE segmail_deliveries"))
    sendable = sum(d[4] == DeliveryStatus.PENDING for d in deliveries)
    log.info(
        "mailing %s run %s: %d deliveries frozen (%d to send), options %s",
        mailing.slug,
        run_id,
        len(deliveries),
        sendable,
        options,
    )
    return run_id
