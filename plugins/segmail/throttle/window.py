"""Send windows: the weekdays and local hours in which a mailing may send, in its time zone.

Spelled in a mailing's YAML as

    timezone: Europe/Vienna
    send_window: {days: [mon-fri], start: "08:00", end: "18:00"}

`days` lists day names (mon … sun) and ranges (`mon-fri`); `end` may be "24:00" (midnight); a window
never spans midnight (write two days' worth as separate hours instead: start < end). Times must be
quoted: YAML 1.1 reads an unquoted 18:00 as the number 1080. Daylight-saving changes are handled
by computing every boundary in local time and converting it to UTC (the time zone database decides,
not a fixed offset). A boundary the clock shows twice (the hour repeated in autumn) is its first
showing; one the clock skips (02:30 on a spring-forward night) is the moment it jumps past it, so a
window never sends after its end by local time. Pure functions of a moment: no clock, no I/O.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$|^24:00$")
_SEARCH_DAYS = 8  # a window open on at least one weekday opens within a week


def zone(name: str) -> ZoneInfo:
    """An IANA time zone (Europe/Vienna, UTC); ValueError naming the field for anything else."""
    if not isinstance(name, str) or not name or name != name.strip() or name.startswith("/"):
        raise ValueError(f"timezone {name!r} is not an IANA time zone name such as Europe/Vienna or UTC")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"timezone {name!r} is not an IANA time zone name such as Europe/Vienna or UTC"
        ) from None


def _instant(day: date, wall: time, tz: ZoneInfo) -> datetime:
    """The UTC moment the local clock on `day` first shows `wall`, or jumps past it."""
    local = datetime.combine(day, wall, tzinfo=tz)
    after = local.astimezone(UTC)  # a skipped time: read with the offset before the jump, so past it
    if after.astimezone(tz).replace(tzinfo=None) == local.replace(tzinfo=None):
        return after
    before = local.replace(fold=1).astimezone(UTC)  # read with the offset after the jump: before it
    wanted, low, high = local.replace(tzinfo=None), int(before.timestamp()), int(after.timestamp())
    while high - low > 1:  # the jump lies between; zones jump on whole seconds
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, tz).replace(tzinfo=None) >= wanted:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)


def _expand_days(items: list[str]) -> list[int]:
    days: list[int] = []
    for item in items:
        first, _, last = str(item).strip().lower().partition("-")
        if first not in DAY_NAMES or (last and last not in DAY_NAMES):
            raise ValueError(f"{item!r} is not a day (mon … sun) or a range of days such as mon-fri")
        start, end = DAY_NAMES.index(first), DAY_NAMES.index(last or first)
        if end < start:
            raise ValueError(f"{item!r}: a range runs forward within a week (mon-fri, not fri-mon)")
        days += [d for d in range(start, end + 1) if d not in days]
    return sorted(days)


def _parse_time(value: object, field: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        raise ValueError(
            f'{field}: write the time in quotes, e.g. {field}: "18:00" (YAML reads an unquoted 18:00 as {value})'
        )
    if not isinstance(value, str) or not _TIME.match(value):
        raise ValueError(f"{field}: {value!r} is not a time of day as HH:MM (00:00 to 24:00)")
    return value


class SendWindow(BaseModel):
    """When a mailing may send, in the mailing's local time; outside it batches wait deferred."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    days: tuple[int, ...] = Field(default=tuple(range(7)), description="0 = Monday")
    start: str = "00:00"
    end: str = "24:00"

    @field_validator("days", mode="before")
    @classmethod
    def _days(cls, value: object) -> object:
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            days = _expand_days(list(value))
            if not days:
                raise ValueError("name at least one day")
            return tuple(days)
        if isinstance(value, tuple) and value and all(isinstance(v, int) and 0 <= v < 7 for v in value):
            return tuple(sorted(set(value)))
        raise ValueError("days: a list of day names such as [mon-fri] or [mon, wed, fri]")

    @field_validator("start", "end", mode="before")
    @classmethod
    def _times(cls, value: object, info) -> str:
        return _parse_time(value, info.field_name)

    @model_validator(mode="after")
    def _start_before_end(self) -> SendWindow:
        if self.start == "24:00":
            raise ValueError("start: 24:00 is the end of a day; use 00:00")
        if self.end != "24:00" and self.end <= self.start:
            raise ValueError(
                f"start {self.start} must be before end {self.end} (a window does not span midnight)"
            )
        return self

    def describe(self) -> str:
        """'Mon–Fri 08:00–18:00' for pages and logs."""
        names = [DAY_NAMES[d].capitalize() for d in self.days]
        contiguous = len(self.days) > 2 and self.days == tuple(range(self.days[0], self.days[-1] + 1))
        days = f"{names[0]}–{names[-1]}" if contiguous else ", ".join(names)
        return f"{days} {self.start}–{self.end}"

    # ---------------------------------------------------------------- moments

    def _bounds(self, day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
        """The UTC start and end of the window on a local day."""
        start = _instant(day, time.fromisoformat(self.start), tz)
        if self.end == "24:00":
            return start, _instant(day + timedelta(days=1), time(0), tz)
        return start, _instant(day, time.fromisoformat(self.end), tz)

    def open_span(self, at: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
        """(opens, closes) in UTC of the window that is open at `at` or opens next after it;
        `opens <= at` means the window is open now."""
        local_day = at.astimezone(tz).date() - timedelta(days=1)  # yesterday's window may still be open
        for offset in range(_SEARCH_DAYS + 1):
            day = local_day + timedelta(days=offset)
            if day.weekday() not in self.days:
                continue
            opens, closes = self._bounds(day, tz)
            if closes > at:
                return opens, closes
        raise AssertionError("a window with at least one day opens within a week")  # pragma: no cover

    def is_open(self, at: datetime, tz: ZoneInfo) -> bool:
        return self.open_span(at, tz)[0] <= at

    def next_open(self, at: datetime, tz: ZoneInfo) -> datetime:
        """`at` itself when the window is open then, else when it opens next (UTC)."""
        opens, _closes = self.open_span(at, tz)
        return max(opens, at)
