"""What the monitoring pages say about a mailing's local time, send window and caps.

Schedules and windows are the mailing's wall-clock times, so they are shown in its time zone with
the zone named ("Mon 2026-03-09 08:00 Europe/Vienna"), unlike stored times, which the pages show in
the viewer's time zone.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo

from sqlalchemy import Engine

from segmail.throttle.budget import BudgetStore, Cap
from segmail.throttle.gate import Limited, mailing_caps


def local(moment: datetime, tz: tzinfo, name: str) -> str:
    return f"{moment.astimezone(tz):%a %Y-%m-%d %H:%M} {name}"


def sending_facts(
    mailing: Limited, *, now: datetime | None = None, engine: Engine | None = None
) -> list[tuple[str, str]]:
    """(label, text) pairs: schedule, send window now, and each cap's use in its current period."""
    now = now or datetime.now(UTC)
    tz, timezone, schedule = mailing.zone, mailing.timezone, getattr(mailing, "schedule", None)
    facts = [("Time zone", timezone)]
    if schedule and schedule != "after_import":
        facts.append(("Schedule", f"{schedule} (local time in {timezone})"))
    window = mailing.send_window
    if window is not None:
        opens, closes = window.open_span(now, tz)
        state = (
            f"open until {local(closes, tz, timezone)}"
            if opens <= now
            else f"closed; opens {local(opens, tz, timezone)}"
        )
        facts.append(("Send window", f"{window.describe()} {timezone} — {state}"))
    caps = mailing_caps(mailing) + _connection_caps(mailing)
    if caps:
        store = BudgetStore(engine)
        facts += [("Send cap", _cap_use(store, cap, now, timezone)) for cap in caps]
    return facts


def _cap_use(store: BudgetStore, cap: Cap, now: datetime, timezone: str) -> str:
    start, end = cap.span(now)
    used = store.usage(cap.scope, period=cap.period, starts_at=start)
    zone_name = timezone if cap.scope.startswith("mailing:") else "UTC"
    return f"{used} of {cap.limit} per {cap.period} for {cap.scope} (until {local(end, cap.tz, zone_name)})"


def _connection_caps(mailing: Limited) -> list[Cap]:
    """The SMTP connection's caps, when the pages can read the connection (else none are shown)."""
    from segmail.throttle.gate import connection_caps

    conn_id = getattr(mailing, "smtp_conn_id", None)
    if not conn_id or getattr(mailing, "channel", "email") != "email":
        return []
    try:
        return connection_caps(conn_id)
    except Exception:  # the pages must not depend on a connection being readable here
        return []
