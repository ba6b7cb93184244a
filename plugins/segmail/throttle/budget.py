"""Shared send budgets: `max_per_hour` / `max_per_day` of a mailing and of a connection, counted in
the database so every batch of every run (and every worker) draws from the same budget.

A cap is a `Cap(scope, period, limit, tz)`: scope `mailing:<slug>` or `<kind>:<connection id>`
(`smtp:smtp_default`, `sms:kannel`), a calendar hour or day in time zone `tz` (a mailing's caps
count in its own time zone, a connection's in UTC). One row per (scope, period, start) in
segmail_send_budgets holds `used`.

The invariant: **`used` is never less than the mails handed to a server in that period**, so the
cap is never exceeded, whatever the number of batches, runs or workers. It holds because

- a sender takes units before it hands a mail to the transport (`reserve`), in one transaction that
  locks every row it draws from (PostgreSQL: `SELECT … FOR UPDATE` in a fixed order, so two
  reservations never deadlock; SQLite: the write lock of `BEGIN IMMEDIATE`) and grants at most the
  smallest remainder of all its caps. A period's missing rows are created before, in a transaction
  of their own: created inside the locking one, a new row would be locked out of that order (the
  rows that existed first, then the new ones), and two reservations could wait for each other;
- units are only given back (`release`) for mails that were never handed over: the remainder of a
  reservation when a batch stops (in a `finally`), or when its period ends;
- a mail that failed or was left pending after it went out stays counted (the server saw it); its
  retry takes a new unit.

What can be lost is the other direction: a sender killed outright (SIGKILL, a lost machine) cannot
give back what it reserved and did not send, so up to one reservation per killed batch stays
counted in that period and the cap errs on the safe side. Reservations are therefore small (see
`segmail.throttle.gate.chunk_size`: a few pipelined rounds, at most a tenth of the smallest cap),
which also keeps the budget's cost off the hot path — one short transaction per chunk of mails, never
one per mail. A counted unit is never counted twice: `release` subtracts exactly what `reserve`
added and was not used, on the rows it was added to.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from enum import StrEnum

from sqlalchemy import Connection, Engine, and_, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from segmail.store.db import default_engine, is_postgres
from segmail.store.models import SendBudget

TABLE = SendBudget.__table__
KEEP_DAYS = 35  # periods that ended longer ago are deleted when a new period starts


class Period(StrEnum):
    HOUR = "hour"
    DAY = "day"


@dataclass(frozen=True)
class Cap:
    """At most `limit` mails per `period` for `scope`; periods are calendar hours or days in `tz`."""

    scope: str
    period: Period
    limit: int
    tz: tzinfo = UTC

    def span(self, at: datetime) -> tuple[datetime, datetime]:
        """(start, end) in UTC of the period holding `at` (a local day may last 23 or 25 hours)."""
        local = at.astimezone(self.tz)
        if self.period == Period.HOUR:
            start = local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)
            return start, start + timedelta(hours=1)
        midnight = datetime.combine(local.date(), datetime.min.time(), tzinfo=self.tz)
        following = datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), tzinfo=self.tz)
        return midnight.astimezone(UTC), following.astimezone(UTC)

    def describe(self) -> str:
        return f"{self.limit} per {self.period} for {self.scope}"


@dataclass(frozen=True)
class Draw:
    """Units drawn from one cap's row."""

    cap: Cap
    starts_at: datetime
    ends_at: datetime


@dataclass(frozen=True)
class Grant:
    """What `reserve` granted: `count` units from every row of `draws` (all or nothing per unit).
    Units are good until `valid_until` (the earliest period end); when fewer were granted than
    asked, `exhausted` names the caps that ran out and `resume_at` is when they all refill."""

    count: int
    draws: tuple[Draw, ...]
    valid_until: datetime
    exhausted: tuple[Cap, ...] = ()
    resume_at: datetime | None = None


class BudgetStore:
    """The budgets' SQL: atomic reservations and returns (see the module docstring)."""

    def __init__(self, engine: Engine | None = None) -> None:
        self.engine = engine or default_engine()
        self.known: set[tuple] = set()  # rows seen to exist (only long-past periods are deleted)

    def reserve(self, caps: Sequence[Cap], *, want: int, now: datetime) -> Grant:
        """Up to `want` units from every cap at once, in one transaction."""
        draws = tuple(sorted((Draw(c, *c.span(now)) for c in caps), key=_key))
        self._create_missing(draws, now)
        with self.engine.begin() as conn:
            used = self._select(conn, draws, lock=True)
            room = {d: max(0, d.cap.limit - used[_key(d)]) for d in draws}
            count = max(0, min([want, *room.values()]))
            if count:
                self._add(conn, draws, count, now)
        exhausted = tuple(d for d in draws if room[d] <= count)
        return Grant(
            count=count,
            draws=draws,
            valid_until=min(d.ends_at for d in draws),
            exhausted=tuple(d.cap for d in exhausted) if count < want else (),
            resume_at=max(d.ends_at for d in exhausted) if count < want and exhausted else None,
        )

    def release(self, grant: Grant, *, unused: int, now: datetime) -> None:
        """Give back `unused` units of `grant`: mails that were never handed to a server."""
        if unused <= 0:
            return
        unused = min(unused, grant.count)
        with self.engine.begin() as conn:
            self._select(conn, grant.draws, lock=True)  # in the order `reserve` locks them: no deadlock
            for draw in grant.draws:
                conn.execute(
                    update(TABLE).where(_match(draw)).values(used=TABLE.c.used - unused, updated_at=now)
                )

    def usage(self, scope: str, *, period: Period, starts_at: datetime) -> int:
        """Units used in one period (0 when nothing was reserved)."""
        with self.engine.connect() as conn:
            used = conn.execute(
                select(TABLE.c.used).where(
                    TABLE.c.scope == scope, TABLE.c.period == period, TABLE.c.starts_at == starts_at
                )
            ).scalar_one_or_none()
        return used or 0

    # ---------------------------------------------------------------- internals

    def _create_missing(self, draws: tuple[Draw, ...], now: datetime) -> None:
        """Rows of a new period, committed before any of them is locked (see the module)."""
        if all(_key(d) in self.known for d in draws):
            return
        with self.engine.begin() as conn:
            existing = self._select(conn, draws, lock=False)
            rows = [_new_row(d, now) for d in draws if _key(d) not in existing]
            if rows:
                insert = (postgresql if is_postgres(self.engine) else sqlite).insert(TABLE)
                conn.execute(insert.on_conflict_do_nothing(), rows)
                _prune(conn, before=_utc(now) - timedelta(days=KEEP_DAYS))
        self.known.update(_key(d) for d in draws)

    def _select(self, conn: Connection, draws: tuple[Draw, ...], *, lock: bool) -> dict[tuple, int]:
        """`used` of each existing row; with `lock`, locked in key order for this transaction."""
        query = (
            select(TABLE.c.scope, TABLE.c.period, TABLE.c.starts_at, TABLE.c.used)
            .where(or_(*(_match(d) for d in draws)))
            .order_by(TABLE.c.scope, TABLE.c.period, TABLE.c.starts_at)
        )
        if lock and is_postgres(self.engine):
            query = query.with_for_update()
        return {(r.scope, r.period, _utc(r.starts_at)): r.used for r in conn.execute(query)}

    def _add(self, conn: Connection, draws: tuple[Draw, ...], count: int, now: datetime) -> None:
        for draw in draws:
            conn.execute(
                update(TABLE)
                .where(_match(draw))
                .values(used=TABLE.c.used + count, cap=draw.cap.limit, updated_at=now)
            )


def _prune(conn: Connection, *, before: datetime) -> None:
    """Rows of periods that started before `before` (a day at most before they ended): no
    reservation draws from them again, and the pages show only current periods, so the table keeps
    about KEEP_DAYS days per cap instead of growing for ever."""
    conn.execute(delete(TABLE).where(TABLE.c.starts_at < before))


def _utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; they are UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _key(draw: Draw) -> tuple:
    return (draw.cap.scope, draw.cap.period.value, draw.starts_at)


def _new_row(draw: Draw, now: datetime) -> dict:
    cap = draw.cap
    return {
        "scope": cap.scope,
        "period": cap.period.value,
        "starts_at": draw.starts_at,
        "used": 0,
        "cap": cap.limit,
        "updated_at": now,
    }


def _match(draw: Draw):
    return and_(
        TABLE.c.scope == draw.cap.scope,
        TABLE.c.period == draw.cap.period.value,
        TABLE.c.starts_at == draw.starts_at,
    )
