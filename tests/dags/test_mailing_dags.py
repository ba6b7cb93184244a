"""The mailing DAGs end to end with dag.test(): real SMTP server, SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from tests_support import NEWSLETTER_RUN_SUCCEEDED, get_dag, states


@pytest.fixture
def smtp_pool(airflow_home):
    from airflow.models.pool import Pool

    Pool.create_or_update_pool(
        "smtp", slots=4, description="segmail SMTP connections", include_deferred=False
    )


def count(engine, table: str) -> int:
    with engine.connect() as conn:
        return conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one()


@pytest.mark.airflow
def test_newsletter_dag_sends_in_mapped_batches_and_summarizes(newsletter_audience, smtp_sink, smtp_pool):
    engine = newsletter_audience
    run = get_dag("mailing__newsletter").test(run_conf={"dry_run": False})
    assert run.state == "success", states(run)
    assert states(run) == NEWSLETTER_RUN_SUCCEEDED
    assert sorted(r for m in smtp_sink.messages for r in m.recipients) == [
        "anna@example.com",
        "bob@example.com",
        "chloe@example.ca",
        "giulia@example.it",
    ]
    assert count(engine, "segmail_activity_log") == 4
    with engine.connect() as conn:
        status, totals = conn.execute(text("SELECT status, totals FROM segmail_mailing_runs")).one()
    assert status == "succeeded" and '"sent": 4' in totals
    # The DAG run resolves to its mailing run: what the plugin's "Mailing run" tab of the run opens.
    from segmail.store.read import mailing_run_id

    with engine.connect() as conn:
        run_id = conn.execute(text("SELECT id FROM segmail_mailing_runs")).scalar_one()
    assert mailing_run_id(mailing="newsletter", dag_run_id=run.run_id, engine=engine) == run_id


@pytest.mark.airflow
def test_an_interval_is_sent_once_even_when_its_dag_run_is_created_again(
    newsletter_audience, smtp_sink, smtp_pool
):
    """`dag.test()` (like `airflow dags test`) deletes the DAG run of the same logical date and creates
    a new one with a new run id: the mailing run of that interval is carried on, nothing is sent twice.
    A run without a logical date is a new run."""
    from datetime import UTC, datetime

    engine = newsletter_audience
    dag = get_dag("mailing__newsletter")
    interval = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    first = dag.test(logical_date=interval)
    assert first.state == "success", states(first)
    assert len(smtp_sink.messages) == 4
    second = dag.test(logical_date=interval)
    assert second.state == "success", states(second)
    assert second.run_id != first.run_id
    assert len(smtp_sink.messages) == 4  # the interval was sent once
    with engine.connect() as conn:
        runs = conn.execute(text("SELECT dag_run_id FROM segmail_mailing_runs")).scalars().all()
    assert runs == [second.run_id]
    third = dag.test(logical_date=None)
    assert third.state == "success", states(third)
    assert len(smtp_sink.messages) == 8  # a new run


@pytest.mark.airflow
def test_newsletter_dag_goes_red_when_too_many_mails_fail(newsletter_audience, smtp_sink, smtp_pool):
    for address in ("anna@example.com", "bob@example.com"):
        smtp_sink.handler.refuse[address] = "550 5.7.1 Rejected by policy"
    run = get_dag("mailing__newsletter").test()
    assert run.state == "failed"
    assert states(run)["summarize"] == "failed"
    assert states(run)["send_batch[de #1]"] == "success"  # a 5xx is an outcome, not a task error


@pytest.mark.airflow
def test_test_mail_goes_to_the_segments_salesperson_and_touches_no_contact(newsletter_audience, smtp_sink):
    engine = newsletter_audience
    run = get_dag("mailing_test_mail").test(
        run_conf={"mailing": "newsletter", "language": "all", "contact": "E2"}
    )
    assert run.state == "success"
    assert [m.recipients for m in smtp_sink.messages] == [["maria.berger@example.com"]] * 3
    subjects = sorted(m.parsed()["Subject"] for m in smtp_sink.messages)
    assert subjects == [
        "[TEST] Chloé, Ihr Newsletter: Frühjahrs-Check & neue Modelle",
        "[TEST] Chloé, votre lettre : contrôle de printemps et nouveautés",
        "[TEST] Chloé, your newsletter: spring check & new models",
    ]
    assert all(len(list(m.parsed().iter_attachments())) == 1 for m in smtp_sink.messages)
    assert count(engine, "segmail_test_mails") == 3
    assert count(engine, "segmail_deliveries") == 0 and count(engine, "segmail_activity_log") == 0


@pytest.mark.airflow
def test_test_mail_without_a_salesperson_fails_with_a_clear_reason(engine, smtp_sink):
    from segmail.contacts import segments

    segments.create_segment(name="Newsletter", engine=engine)
    run = get_dag("mailing_test_mail").test(run_conf={"mailing": "newsletter", "language": "en"})
    assert run.state == "failed"
    assert smtp_sink.messages == []
    from segmail.errors import SegmailError
    from segmail.mailings.definition import get_mailing
    from segmail.mailings.testmail import responsible_salesperson

    with pytest.raises(SegmailError, match="segment 'Newsletter' has no salesperson"):
        responsible_salesperson(get_mailing("newsletter"), engine=engine)


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        pytest.param("after_import", "asset", id="after-import-runs-on-the-contacts-asset"),
        pytest.param("0 8 1 * *", "cron", id="cron"),
        pytest.param(None, "manual", id="manual-only"),
    ],
)
def test_mailing_schedules_map_to_airflow_schedules(schedule, expected):
    from segmail.mailings.definition import get_mailing
    from segmail.orchestration.assets import CONTACTS_ASSET
    from segmail.orchestration.mailing_dag import build_mailing_dag

    mailing = get_mailing("newsletter").model_copy(update={"schedule": schedule})
    dag = build_mailing_dag(mailing)
    timetable = dag.timetable
    if expected == "asset":
        assert type(timetable).__name__ == "AssetTriggeredTimetable"
        assert list(timetable.asset_condition.objects) == [CONTACTS_ASSET]
    elif expected == "cron":
        assert timetable.expression == "0 8 1 * *"
    else:
        assert type(timetable).__name__ == "NullTimetable"
    params = dag.params.dump()
    assert (params["dry_run"], params["languages"], params["max_recipients"]) == (
        False,
        ["de", "en", "fr"],
        0,
    )


def test_send_tasks_use_the_smtp_pool_configured_when_the_dag_is_built(monkeypatch):
    from segmail.mailings.definition import get_mailing
    from segmail.orchestration.mailing_dag import build_mailing_dag

    monkeypatch.setenv("SEGMAIL_SMTP_POOL", "bulk_smtp")
    assert build_mailing_dag(get_mailing("newsletter")).get_task("send_batch").pool == "bulk_smtp"
    monkeypatch.delenv("SEGMAIL_SMTP_POOL")
    assert build_mailing_dag(get_mailing("newsletter")).get_task("send_batch").pool == "smtp"
