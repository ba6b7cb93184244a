"""The run page names the mailing's time zone, its local schedule, whether its send window is open
and how much of each cap is used, and while a run sends, how many of its mails wait for the window
or a cap and until when (SQLite and PostgreSQL)."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from segmail.throttle.budget import BudgetStore, Cap, Period
from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[3]
LIMITS = (
    'schedule: "0 8 * * *"\ntimezone: Europe/Vienna\n'
    'send_window: {days: [mon-fri], start: "08:00", end: "18:00"}\nmax_per_hour: 100\n'
)


def vienna_newsletter(monkeypatch, tmp_path, limits: str = LIMITS):
    include = tmp_path / "include"
    shutil.copytree(ROOT / "include", include)
    path = include / "mailings" / "newsletter.yaml"
    text = path.read_text(encoding="utf-8").replace('schedule: "0 8 1 * *"', "schedule: null")
    path.write_text(text + limits, encoding="utf-8")
    monkeypatch.setenv("SEGMAIL_INCLUDE_DIR", str(include))
    from segmail.mailings.definition import get_mailing

    return get_mailing("newsletter")


def test_sending_facts_in_local_time(engine, monkeypatch, tmp_path):
    from segmail.throttle.status import sending_facts

    mailing = vienna_newsletter(monkeypatch, tmp_path)
    now = datetime(2026, 3, 7, 11, tzinfo=UTC)  # Saturday 12:00 in Vienna
    BudgetStore(engine).reserve([Cap("mailing:newsletter", Period.HOUR, 100, mailing.zone)], want=7, now=now)
    assert sending_facts(mailing, now=now, engine=engine) == [
        ("Time zone", "Europe/Vienna"),
        ("Schedule", "0 8 * * * (local time in Europe/Vienna)"),
        (
            "Send window",
            "Mon–Fri 08:00–18:00 Europe/Vienna — closed; opens Mon 2026-03-09 08:00 Europe/Vienna",
        ),
        ("Send cap", "7 of 100 per hour for mailing:newsletter (until Sat 2026-03-07 13:00 Europe/Vienna)"),
    ]


def test_the_run_page_shows_them(newsletter_audience, monitoring_client, monkeypatch, tmp_path):
    from segmail.mailings.audience import freeze_audience

    mailing = vienna_newsletter(monkeypatch, tmp_path)
    run_id = freeze_audience(mailing, dag_run_id="manual-1", engine=newsletter_audience)
    page = monitoring_client.get(f"/segmail/runs/{run_id}").text
    assert '<dt>Time zone</dt><dd class="sending">Europe/Vienna</dd>' in page
    assert "0 8 * * * (local time in Europe/Vienna)" in page
    assert "Mon–Fri 08:00–18:00 Europe/Vienna — " in page
    assert "0 of 100 per hour for mailing:newsletter" in page


SATURDAY_NOON = datetime(2026, 3, 7, 11, tzinfo=UTC)  # 12:00 in Vienna
MONDAY_TEN = datetime(2026, 3, 9, 9, tzinfo=UTC)  # 10:00 in Vienna


@pytest.mark.parametrize(
    ("now", "used", "pending", "expected"),
    [
        pytest.param(
            SATURDAY_NOON,
            0,
            42,
            "42 mails wait until Mon 2026-03-09 08:00 Europe/Vienna (send window closed)",
            id="window-closed",
        ),
        pytest.param(
            MONDAY_TEN,
            100,
            1,
            "1 mail waits until Mon 2026-03-09 11:00 Europe/Vienna (cap reached)",
            id="cap-reached",
        ),
        pytest.param(
            MONDAY_TEN.replace(hour=16, minute=30),  # 17:30: the hour refills at 18:00, after the window
            100,
            7,
            "7 mails wait until Tue 2026-03-10 08:00 Europe/Vienna (cap reached)",
            id="cap-refills-after-the-window",
        ),
        pytest.param(MONDAY_TEN, 99, 7, None, id="sending"),
        pytest.param(SATURDAY_NOON, 0, 0, None, id="nothing-pending"),
    ],
)
def test_what_waits_and_until_when(engine, monkeypatch, tmp_path, now, used, pending, expected):
    from segmail.throttle.status import sending_state

    mailing = vienna_newsletter(monkeypatch, tmp_path)
    if used:
        hour = Cap("mailing:newsletter", Period.HOUR, 100, mailing.zone)
        assert BudgetStore(engine).reserve([hour], want=used, now=now).count == used
    assert sending_state(mailing, now=now, engine=engine).wait(pending) == expected


def test_the_run_page_says_what_waits_for_a_cap(
    newsletter_audience, monitoring_client, monkeypatch, tmp_path
):
    """Read from the data alone: the run's pending mails and the hour's budget, used up."""
    from segmail.mailings.audience import freeze_audience

    mailing = vienna_newsletter(monkeypatch, tmp_path, "timezone: Europe/Vienna\nmax_per_hour: 3\n")
    run_id = freeze_audience(mailing, dag_run_id="manual-1", engine=newsletter_audience)
    assert 'id="waiting"' not in monitoring_client.get(f"/segmail/runs/{run_id}").text  # frozen: not sending
    with newsletter_audience.begin() as conn:
        conn.execute(text("UPDATE segmail_mailing_runs SET status = 'sending' WHERE id = :r"), {"r": run_id})
        pending = conn.execute(
            text("SELECT COUNT(*) FROM segmail_deliveries WHERE mailing_run_id = :r AND status = 'pending'"),
            {"r": run_id},
        ).scalar_one()
    assert pending > 0
    hour = Cap("mailing:newsletter", Period.HOUR, 3, mailing.zone)
    now = datetime.now(UTC)
    for moment in (now, now + timedelta(minutes=1)):  # also the next hour, should it begin meanwhile
        BudgetStore(newsletter_audience).reserve([hour], want=3, now=moment)
    page = monitoring_client.get(f"/segmail/runs/{run_id}").text
    assert f'<p class="note" id="waiting">{pending} mails wait until ' in page
    assert " Europe/Vienna (cap reached)</p>" in page
    with newsletter_audience.begin() as conn:
        conn.execute(
            text("UPDATE segmail_mailing_runs SET dry_run = :t WHERE id = :r"), {"t": True, "r": run_id}
        )
    assert 'id="waiting"' not in monitoring_client.get(f"/segmail/runs/{run_id}").text  # no gate
    with newsletter_audience.begin() as conn:
        conn.execute(
            text("UPDATE segmail_mailing_runs SET status = 'succeeded', dry_run = :f WHERE id = :r"),
            {"f": False, "r": run_id},
        )
    assert 'id="waiting"' not in monitoring_client.get(f"/segmail/runs/{run_id}").text
