"""Local time, send windows and their spelling in a mailing's YAML, on tiny inputs (no database)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from segmail.errors import SegmailError
from segmail.mailings.definition import load_mailing
from segmail.throttle.window import SendWindow

VIENNA = ZoneInfo("Europe/Vienna")
MINIMAL = """
name: Test
audience: {segments: [A]}
from: "Shop <a@b.example>"
default_language: en
variants:
  en: {subject: Hi, body: x.html}
"""
OFFICE = SendWindow(days=["mon-fri"], start="08:00", end="18:00")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def mailing(tmp_path, extra: str):
    path = tmp_path / "promo.yaml"
    path.write_text(MINIMAL + extra)
    return load_mailing(path)


def test_a_mailing_reads_time_zone_window_and_caps(tmp_path):
    m = mailing(
        tmp_path,
        'timezone: Europe/Vienna\nsend_window: {days: [mon-fri], start: "08:00", end: "18:00"}\n'
        "max_per_hour: 100\nmax_per_day: 1000\n",
    )
    assert m.zone == VIENNA
    assert m.send_window == OFFICE and m.send_window.days == (0, 1, 2, 3, 4)
    assert m.send_window.describe() == "Mon–Fri 08:00–18:00"
    assert (m.max_per_hour, m.max_per_day) == (100, 1000)
    defaults = mailing(tmp_path, "")
    assert defaults.timezone == "UTC" and defaults.send_window is None and defaults.max_per_hour is None


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        pytest.param("timezone: Europe/Wien\n", "not an IANA time zone name", id="unknown-zone"),
        pytest.param("timezone: +02:00\n", "not an IANA time zone name", id="offset-not-zone"),
        pytest.param("timezone: ../../etc/passwd\n", "not an IANA time zone name", id="path"),
        pytest.param(
            "send_window: {days: [mon-fri], start: 08:00, end: 18:00}\n",
            'end: write the time in quotes, e.g. end: "18:00" (YAML reads an unquoted 18:00 as 1080)',
            id="unquoted-time",
        ),
        pytest.param('send_window: {start: "8am"}\n', "'8am' is not a time of day as HH:MM", id="bad-time"),
        pytest.param('send_window: {start: "24:00"}\n', "start: 24:00 is the end of a day", id="start-24"),
        pytest.param(
            'send_window: {start: "18:00", end: "08:00"}\n', "must be before end 08:00", id="over-midnight"
        ),
        pytest.param("send_window: {days: [mo]}\n", "'mo' is not a day", id="bad-day"),
        pytest.param("send_window: {days: [fri-mon]}\n", "runs forward within a week", id="backward-range"),
        pytest.param("send_window: {days: []}\n", "name at least one day", id="no-days"),
        pytest.param("send_window: {days: [mon], from: x}\n", "Extra inputs are not permitted", id="typo"),
        pytest.param("max_per_hour: 0\n", "greater than or equal to 1", id="zero-cap"),
    ],
)
def test_bad_time_zones_windows_and_caps_name_the_field(tmp_path, extra, message):
    with pytest.raises(SegmailError) as exc:
        mailing(tmp_path, extra)
    assert str(exc.value).startswith("promo.yaml: ")
    assert message in str(exc.value)


def test_days_accept_names_and_ranges():
    window = SendWindow(days=["mon", "wed-fri", "sun"], end="12:00")
    assert window.days == (0, 2, 3, 4, 6)
    assert window.describe() == "Mon, Wed, Thu, Fri, Sun 00:00–12:00"
    assert SendWindow(days="sat").days == (5,)


@pytest.mark.parametrize(
    ("at", "is_open", "opens", "closes"),
    [
        # Winter (CET, UTC+1): 08:00–18:00 local is 07:00–17:00 UTC.
        pytest.param(
            utc(2026, 1, 7, 6, 59), False, utc(2026, 1, 7, 7), utc(2026, 1, 7, 17), id="winter-before"
        ),
        pytest.param(utc(2026, 1, 7, 7), True, utc(2026, 1, 7, 7), utc(2026, 1, 7, 17), id="winter-opens"),
        pytest.param(utc(2026, 1, 7, 17), False, utc(2026, 1, 8, 7), utc(2026, 1, 8, 17), id="winter-closed"),
        # Summer (CEST, UTC+2): 06:00–16:00 UTC.
        pytest.param(utc(2026, 7, 8, 6), True, utc(2026, 7, 8, 6), utc(2026, 7, 8, 16), id="summer-open"),
        # Friday evening waits for Monday morning.
        pytest.param(utc(2026, 7, 10, 16), False, utc(2026, 7, 13, 6), utc(2026, 7, 13, 16), id="weekend"),
        # The weekend of the switch to summer time: Monday opens at 06:00 UTC, no longer 07:00.
        pytest.param(utc(2026, 3, 28, 12), False, utc(2026, 3, 30, 6), utc(2026, 3, 30, 16), id="spring"),
        # The weekend of the switch back: Monday opens at 07:00 UTC again.
        pytest.param(utc(2026, 10, 24, 12), False, utc(2026, 10, 26, 7), utc(2026, 10, 26, 17), id="autumn"),
    ],
)
def test_window_boundaries_follow_local_time_across_dst(at, is_open, opens, closes):
    assert OFFICE.is_open(at, VIENNA) is is_open
    assert OFFICE.open_span(at, VIENNA) == (opens, closes)
    assert OFFICE.next_open(at, VIENNA) == (at if is_open else opens)


# 29 March 2026: Vienna's clocks jump from 02:00 to 03:00 (01:00 UTC), 02:30 never happens;
# 25 October 2026: 02:00-03:00 happens twice (00:00 and 01:00 UTC), the first showing counts.
SKIPPED_OR_REPEATED = {  # start, end, a moment, when the window then opens and closes
    "ends-in-the-jump": ("00:00", "02:30", utc(2026, 3, 29), utc(2026, 3, 28, 23), utc(2026, 3, 29, 1)),
    "starts-in-the-jump": ("02:30", "06:00", utc(2026, 3, 29), utc(2026, 3, 29, 1), utc(2026, 3, 29, 4)),
    "ends-in-the-repeat": (
        "00:00",
        "02:30",
        utc(2026, 10, 24, 23),
        utc(2026, 10, 24, 22),
        utc(2026, 10, 25, 0, 30),
    ),
    "starts-in-the-repeat": (
        "02:30",
        "06:00",
        utc(2026, 10, 24, 23),
        utc(2026, 10, 25, 0, 30),
        utc(2026, 10, 25, 5),
    ),
}


@pytest.mark.parametrize(
    ("start", "end", "at", "opens", "closes"), SKIPPED_OR_REPEATED.values(), ids=SKIPPED_OR_REPEATED.keys()
)
def test_boundaries_the_clock_skips_or_repeats(start, end, at, opens, closes):
    """A window never sends past its end by local time: an end the clock skips is the jump itself."""
    window = SendWindow(days=["sun"], start=start, end=end)
    assert window.open_span(at, VIENNA) == (opens, closes)


@pytest.mark.parametrize("days", [(), (7,), (-1, 2)], ids=str)
def test_day_numbers_are_checked_too(days):
    with pytest.raises(ValueError, match="name at least one day|days: a list of day names"):
        SendWindow(days=days)  # from Python; YAML gives names


def test_a_window_to_midnight_and_one_open_yesterday_evening():
    evening = SendWindow(days=["fri"], start="20:00", end="24:00")
    # Friday 23:30 in Vienna is Friday 22:30 UTC in winter: still open, closes at local midnight.
    assert evening.open_span(utc(2026, 1, 9, 22, 30), VIENNA) == (utc(2026, 1, 9, 19), utc(2026, 1, 9, 23))
    # Saturday 00:30 local (Friday 23:30 UTC): closed until next Friday.
    assert evening.next_open(utc(2026, 1, 9, 23, 30), VIENNA) == utc(2026, 1, 16, 19)


def test_too_late_says_the_local_time_with_the_zone(tmp_path):
    from datetime import timedelta

    vienna = mailing(tmp_path, "timezone: Europe/Vienna\n")
    due = utc(2026, 7, 1, 6)
    reason = vienna.too_late(scheduled_for=due, now=due + timedelta(days=1))
    assert reason.startswith("scheduled for 2026-07-01 08:00 Europe/Vienna (06:00 UTC), starting 1 day")
    plain = mailing(tmp_path, "")
    assert plain.too_late(scheduled_for=due, now=due + timedelta(days=1)).startswith(
        "scheduled for 2026-07-01 06:00 UTC, starting"
    )
