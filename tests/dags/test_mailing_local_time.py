"""Local-time schedules and send windows in the mailing DAGs: the timetable across daylight-saving
changes, and a batch that waits deferred while the window is closed (dag.test() runs the trigger)."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tests_support import NEWSLETTER_RUN_SUCCEEDED, create_smtp_pool, get_dag, states

ROOT = Path(__file__).resolve().parents[2]
OFFICE_HOURS = 'timezone: Europe/Vienna\nsend_window: {days: [mon-fri], start: "08:00", end: "18:00"}\n'


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def run_times(dag, *, earliest: datetime, count: int) -> list[datetime]:
    """The next `count` run times the scheduler computes (the DAG's timetable as it serializes it)."""
    from airflow.serialization.encoders import coerce_to_core_timetable
    from airflow.timetables.base import TimeRestriction

    timetable = coerce_to_core_timetable(dag.timetable)
    restriction = TimeRestriction(earliest=earliest, latest=None, catchup=True)
    times, last = [], None
    for _ in range(count):
        info = timetable.next_dagrun_info(last_automated_data_interval=last, restriction=restriction)
        times.append(info.run_after)
        last = info.data_interval
    return times


def test_a_local_8_oclock_schedule_runs_at_7_utc_in_summer_and_8_utc_in_winter():
    from segmail.mailings.definition import get_mailing
    from segmail.orchestration.mailing_dag import build_mailing_dag

    mailing = get_mailing("newsletter").model_copy(
        update={"schedule": "0 8 * * *", "timezone": "Europe/Vienna"}
    )
    dag = build_mailing_dag(mailing)
    assert dag.timetable.expression == "0 8 * * *"
    assert "Times in **Europe/Vienna**." in dag.doc_md
    # Summer time starts on Sunday 29 March 2026 and ends on Sunday 25 October 2026.
    spring = run_times(dag, earliest=utc(2026, 3, 27), count=4)
    assert spring == [utc(2026, 3, 27, 7), utc(2026, 3, 28, 7), utc(2026, 3, 29, 6), utc(2026, 3, 30, 6)]
    autumn = run_times(dag, earliest=utc(2026, 10, 23), count=4)
    assert autumn == [utc(2026, 10, 23, 6), utc(2026, 10, 24, 6), utc(2026, 10, 25, 7), utc(2026, 10, 26, 7)]
    # Every one of them is 08:00 on the wall clock in Vienna.
    vienna = mailing.zone
    assert {t.astimezone(vienna).strftime("%H:%M") for t in spring + autumn} == {"08:00"}


def test_a_utc_mailing_keeps_its_utc_schedule():
    from segmail.mailings.definition import get_mailing
    from segmail.orchestration.mailing_dag import build_mailing_dag

    dag = build_mailing_dag(get_mailing("newsletter").model_copy(update={"schedule": "0 8 * * *"}))
    assert run_times(dag, earliest=utc(2026, 3, 28), count=3) == [
        utc(2026, 3, 28, 8),
        utc(2026, 3, 29, 8),
        utc(2026, 3, 30, 8),
    ]


@pytest.fixture
def office_hours_newsletter(monkeypatch, tmp_path):
    """The newsletter in Vienna, sending Mon–Fri 08:00–18:00 only."""
    include = tmp_path / "include"
    shutil.copytree(ROOT / "include", include)
    path = include / "mailings" / "newsletter.yaml"
    path.write_text(path.read_text(encoding="utf-8") + OFFICE_HOURS, encoding="utf-8")
    monkeypatch.setenv("SEGMAIL_INCLUDE_DIR", str(include))
    return include


@pytest.fixture
def smtp_pool(airflow_home):
    create_smtp_pool()


@pytest.mark.airflow
def test_a_batch_outside_the_send_window_waits_deferred_and_sends_when_it_opens(
    office_hours_newsletter, newsletter_audience, smtp_sink, smtp_pool, monkeypatch
):
    """ "Now" is Saturday noon in Vienna: the first batch defers with a DateTimeTrigger for Monday
    08:00 local (07:00 UTC in March) before sending anything. dag.test() runs the trigger in line;
    the fake clock moves to the trigger's moment as it fires, the batch resumes and sends, and the
    batches after it (dag.test() runs them one after another) find the window open."""
    import airflow.sdk.definitions.dag as dag_module
    from segmail.throttle import gate

    clock = {"now": utc(2026, 3, 7, 11)}  # Saturday 12:00 in Vienna
    monkeypatch.setattr(gate.SystemClock, "now", lambda self: clock["now"])
    fired = []
    run_inline = dag_module._run_inline_trigger

    def run_trigger(trigger, ti):
        fired.append((ti.task_id, ti.map_index, trigger.moment, len(smtp_sink.messages)))
        clock["now"] = trigger.moment  # the triggerer waits until then
        return run_inline(trigger, ti)

    monkeypatch.setattr(dag_module, "_run_inline_trigger", run_trigger)

    run = get_dag("mailing__newsletter").test()
    assert run.state == "success", states(run)
    assert states(run) == NEWSLETTER_RUN_SUCCEEDED
    monday_8_vienna = utc(2026, 3, 9, 7)
    # One batch (dag.test() picks the first in any order) deferred while nothing was sent.
    assert [(task, moment, sent) for task, _index, moment, sent in fired] == [
        ("send_batch", monday_8_vienna, 0)
    ]
    assert len(smtp_sink.messages) == 4  # sent once the window opened
