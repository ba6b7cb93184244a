"""An SMS mailing's DAG and its test message with dag.test(), on SQLite and PostgreSQL, with the
fake gateway in place of Kannel (the end-to-end test through Kannel is in tests/integration/sms)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from fake_sms_support import SMS_SENT_TO, FakeSmsGateway, seed_sms_audience, sms_mailing_data
from sqlalchemy import text
from tests_support import copy_include, get_dag, run_succeeded, states

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def sms_include(tmp_path, monkeypatch):
    """A copy of include/ with the SMS mailing `reminder` (audience: Newsletter, languages en and de)."""
    include = copy_include(tmp_path, monkeypatch)
    data = {k: v for k, v in sms_mailing_data().items() if k != "slug"}
    (include / "mailings" / "reminder.yaml").write_text(
        yaml.safe_dump(data, allow_unicode=True), encoding="utf-8"
    )
    return include


@pytest.fixture
def sms_pool(airflow_home):
    from airflow.models.pool import Pool

    Pool.create_or_update_pool("sms", slots=2, description="segmail SMS batches", include_deferred=False)


@pytest.fixture
def fake_gateway(monkeypatch):
    """What `segmail.sms.kannel.gateway_for` hands the tasks (dag.test() runs them in this process);
    the connection exists, as sending reads its caps (none here) from its extra."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMS_DEFAULT",
        '{"conn_type": "http", "host": "127.0.0.1", "port": 13013, "login": "segmail", "password": "x"}',
    )
    gateway = FakeSmsGateway()
    monkeypatch.setattr("segmail.sms.kannel.gateway_for", lambda conn_id: gateway)
    return gateway


def one(engine, sql: str):
    with engine.connect() as conn:
        return conn.execute(text(sql)).one()


@pytest.mark.airflow
def test_sms_dag_sends_in_the_sms_pool_and_summarizes(engine, tmp_path, sms_include, sms_pool, fake_gateway):
    seed_sms_audience(engine, tmp_path)
    dag = get_dag("mailing__reminder")
    assert dag.get_task("send_batch").pool == "sms"
    run = dag.test(run_conf={"dry_run": False})
    assert run.state == "success", states(run)
    assert states(run) == run_succeeded("de #1", "en #2")
    assert sorted(fake_gateway.numbers) == sorted(SMS_SENT_TO.values())
    assert all(
        m.report_url.startswith("https://unsubscribe.autohaus-demo.example/") for m in fake_gateway.accepted
    )
    status, channel, totals = one(engine, "SELECT status, channel, totals FROM segmail_mailing_runs")
    assert (status, channel) == ("succeeded", "sms") and '"sent": 3' in totals and '"skipped": 4' in totals
    assert one(engine, "SELECT COUNT(*) FROM segmail_activity_log WHERE kind = 'sms'") == (3,)


@pytest.mark.airflow
def test_a_dry_run_needs_no_gateway_connection(engine, tmp_path, sms_include, sms_pool, monkeypatch):
    seed_sms_audience(engine, tmp_path)
    monkeypatch.delenv("AIRFLOW_CONN_SMS_DEFAULT", raising=False)

    def no_gateway(conn_id):
        raise AssertionError(f"a dry run asked for the gateway {conn_id!r}")

    monkeypatch.setattr("segmail.sms.kannel.gateway_for", no_gateway)
    run = get_dag("mailing__reminder").test(run_conf={"dry_run": True})
    assert run.state == "success", states(run)
    status, totals = one(engine, "SELECT status, totals FROM segmail_mailing_runs")
    assert status == "succeeded" and '"sent": 0' in totals and '"skipped": 7' in totals


@pytest.mark.airflow
def test_sms_test_message_goes_to_the_salespersons_mobile_and_touches_no_contact(
    engine, tmp_path, sms_include, fake_gateway, airflow_home
):
    seed_sms_audience(engine, tmp_path)
    run = get_dag("mailing_test_mail").test(
        run_conf={"mailing": "reminder", "language": "all", "contact": "S1"}
    )
    assert run.state == "success", states(run)
    assert [m.to for m in fake_gateway.accepted] == ["+436649876543"] * 2
    assert sorted(m.text for m in fake_gateway.accepted) == [
        "[TEST] Hallo Anna, Ihr Service ist fällig. STOP zum Abmelden",
        "[TEST] Hi Anna, your check is due. Reply STOP to opt out",
    ]
    assert {(m.sender, m.report_url) for m in fake_gateway.accepted} == {("Autohaus", None)}
    assert one(engine, "SELECT COUNT(*) FROM segmail_test_mails WHERE recipient = '+436649876543'") == (2,)
    assert one(engine, "SELECT COUNT(*) FROM segmail_deliveries") == (0,)
    assert one(engine, "SELECT COUNT(*) FROM segmail_activity_log") == (0,)


def test_a_salesperson_without_mobile_is_a_clear_error(engine, tmp_path, sms_include, fake_gateway):
    from segmail.contacts import salespeople
    from segmail.errors import SegmailError
    from segmail.mailings.definition import get_mailing
    from segmail.sms.testmail import send_test_sms

    seed_sms_audience(engine, tmp_path)
    salespeople.add_salesperson(
        code="MB", name="Maria Berger", email="maria@example.com", mobile="", engine=engine
    )
    with pytest.raises(
        SegmailError, match=r"salesperson MB \(Maria Berger\) has no mobile number .* --mobile"
    ):
        send_test_sms(get_mailing("reminder"), gateway=fake_gateway, engine=engine)
    assert fake_gateway.submitted == []
    sent = send_test_sms(
        get_mailing("reminder"),
        gateway=fake_gateway,
        language="de",
        recipient="+49 151 11112222",
        engine=engine,
    )
    assert [(s["recipient"], s["status"], s["length"]) for s in sent] == [
        ("+4915111112222", "sent", "GSM-7, 62 characters, 1 part")
    ]
