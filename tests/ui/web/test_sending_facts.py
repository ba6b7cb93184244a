"""The run page names the mailing's time zone, its local schedule, whether its send window is open
and how much of each cap is used (SQLite and PostgreSQL)."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

from segmail.throttle.budget import BudgetStore, Cap, Period

ROOT = Path(__file__).resolve().parents[3]
LIMITS = (
    'schedule: "0 8 * * *"\ntimezone: Europe/Vienna\n'
    'send_window: {days: [mon-fri], start: "08:00", end: "18:00"}\nmax_per_hour: 100\n'
)


def vienna_newsletter(monkeypatch, tmp_path):
    include = tmp_path / "include"
    shutil.copytree(ROOT / "include", include)
    path = include / "mailings" / "newsletter.yaml"
    text = path.read_text(encoding="utf-8").replace('schedule: "0 8 1 * *"', "schedule: null")
    path.write_text(text + LIMITS, encoding="utf-8")
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
