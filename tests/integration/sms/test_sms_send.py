"""An SMS run on SQLite and PostgreSQL with the fake gateway: the frozen audience (one message per
number, skips with their reasons, the opt-outs of each channel apart), sending exactly once across
a killed task, rejections and retries, and opt-outs during the run. Kannel itself is in
test_kannel_gateway.py and the end-to-end test."""

from __future__ import annotations

import pytest
from fake_sms_support import SMS_SENT_TO, FakeSmsGateway, Interrupted, seed_sms_audience, sms_mailing
from mailing_support import delivery_rows
from segmail.mailings.audience import freeze_audience
from segmail.mailings.deliveries import plan_batches
from segmail.mailings.transport import TransientSendError
from segmail.sms.send import send_sms_batch
from sqlalchemy import text

SENT_TO = SMS_SENT_TO


@pytest.fixture
def sms_audience(engine, tmp_path):
    return seed_sms_audience(engine, tmp_path)


def send_all(engine, run_id: int, mailing, gateway, **options) -> None:
    for batch in plan_batches(run_id, batch_size=mailing.batch_size, engine=engine):
        send_sms_batch(batch["batch_id"], mailing=mailing, gateway=gateway, engine=engine, **options)


def test_the_audience_is_one_message_per_number_and_every_skip_has_its_reason(sms_audience):
    engine = sms_audience
    run_id = freeze_audience(sms_mailing(), dag_run_id="sms-1", engine=engine)
    found = delivery_rows(engine, run_id)
    assert {k: (r["status"], r["reason"]) for k, r in found.items()} == {
        "S1": ("pending", None),
        "S2": ("pending", None),  # an e-mail opt-out does not stop SMS
        "S3": ("skipped", "duplicate number: another contact of this run gets the message at this number"),
        "S4": ("skipped", "no mobile number"),
        "S5": ("skipped", "opted out of SMS"),
        "S6": ("skipped", "opted out of SMS: another contact with this number opted out"),
        "S9": ("pending", None),
    }
    assert {k: r["mobile_e164"] for k, r in found.items() if r["status"] == "pending"} == SENT_TO
    assert {r["email"] for r in found.values()} == {None}
    assert {k: r["language"] for k, r in found.items() if k in SENT_TO} == {
        "S1": "de",
        "S2": "en",
        "S9": "en",
    }
    with engine.connect() as conn:
        assert (
            conn.execute(
                text("SELECT channel FROM segmail_mailing_runs WHERE id = :r"), {"r": run_id}
            ).scalar()
            == "sms"
        )


def test_an_sms_opt_out_does_not_stop_email(sms_audience):
    from segmail.mailings.definition import get_mailing

    engine = sms_audience
    run_id = freeze_audience(get_mailing("newsletter"), dag_run_id="mail-1", engine=engine)
    found = delivery_rows(engine, run_id)
    assert (found["S5"]["status"], found["S2"]["status"]) == ("pending", "skipped")  # and the reverse
    assert found["S5"]["mobile_e164"] is None
    with engine.connect() as conn:
        assert (
            conn.execute(
                text("SELECT channel FROM segmail_mailing_runs WHERE id = :r"), {"r": run_id}
            ).scalar()
            == "email"
        )


def test_a_run_sends_each_number_once_with_report_urls_and_activity(sms_audience):
    engine = sms_audience
    mailing = sms_mailing()
    run_id = freeze_audience(mailing, dag_run_id="sms-2", engine=engine)
    gateway = FakeSmsGateway()
    send_all(engine, run_id, mailing, gateway)
    assert sorted(gateway.numbers) == sorted(SENT_TO.values())
    by_number = {m.to: m for m in gateway.accepted}
    assert by_number["+436641234567"].text == "Hallo Anna, Ihr Service ist fällig. STOP zum Abmelden"
    assert by_number["+14165550199"].encoding == "UCS-2"  # "ë"
    assert all(
        m.report_url.startswith("https://unsubscribe.autohaus-demo.example/") for m in gateway.accepted
    )
    found = delivery_rows(engine, run_id)
    for key in SENT_TO:
        row = found[key]
        assert (row["status"], row["smtp_code"], row["smtp_response"], row["sms_parts"], row["attempts"]) == (
            "sent",
            202,
            "0: Accepted for delivery",
            1,
            1,
        )
        assert row["sent_at"] is not None
    with engine.connect() as conn:
        activity = conn.execute(
            text(
                "SELECT c.external_id, a.kind, a.subject, a.detail, a.salesperson_code FROM segmail_activity_log a"
                " JOIN segmail_contacts c ON c.id = a.contact_id WHERE a.mailing_run_id = :r ORDER BY 1"
            ),
            {"r": run_id},
        ).all()
    assert [(a.external_id, a.kind, a.salesperson_code) for a in activity] == [
        ("S1", "sms", "MB"),
        ("S2", "sms", "MB"),
        ("S9", "sms", "MB"),
    ]
    assert activity[0].subject == by_number["+436641234567"].text
    assert activity[0].detail.startswith("SMS to +436641234567 from Autohaus: GSM-7")

    again = FakeSmsGateway()  # a cleared task or a second DAG run for the same run sends nothing
    send_all(engine, run_id, mailing, again)
    assert again.submitted == []


def test_a_killed_task_resends_at_most_the_message_in_flight(sms_audience):
    engine = sms_audience
    mailing = sms_mailing(batch_size=10)
    run_id = freeze_audience(mailing, dag_run_id="sms-3", engine=engine)
    gateway = FakeSmsGateway(interrupt_after=1)
    (batch,) = [b for b in plan_batches(run_id, batch_size=10, engine=engine) if b["label"].startswith("en")]
    with pytest.raises(Interrupted):
        send_sms_batch(batch["batch_id"], mailing=mailing, gateway=gateway, engine=engine)
    assert {k: r["status"] for k, r in delivery_rows(engine, run_id).items() if k in ("S2", "S9")} == {
        "S2": "pending",
        "S9": "pending",
    }
    send_sms_batch(batch["batch_id"], mailing=mailing, gateway=gateway, engine=engine)
    assert gateway.numbers == [
        "+4915123456789",
        "+4915123456789",
        "+14165550199",
    ]  # only the one in flight twice
    assert {delivery_rows(engine, run_id)[k]["status"] for k in ("S2", "S9")} == {"sent"}


def test_rejected_fails_with_the_reply_and_a_busy_gateway_retries_then_gives_up(sms_audience):
    engine = sms_audience
    mailing = sms_mailing()
    run_id = freeze_audience(mailing, dag_run_id="sms-4", engine=engine)
    gateway = FakeSmsGateway()
    gateway.reject("+4915123456789", 400, "Unknown receiver")
    gateway.busy("+14165550199", 503, "Temporal failure, try again later.")
    (de, en) = plan_batches(run_id, batch_size=500, engine=engine)
    send_sms_batch(de["batch_id"], mailing=mailing, gateway=gateway, engine=engine)
    with pytest.raises(TransientSendError):
        send_sms_batch(en["batch_id"], mailing=mailing, gateway=gateway, engine=engine)
    found = delivery_rows(engine, run_id)
    assert (found["S2"]["status"], found["S2"]["smtp_code"], found["S2"]["smtp_response"]) == (
        "failed",
        400,
        "Unknown receiver",
    )
    assert found["S2"]["reason"] == "rejected by the SMS gateway: 400 Unknown receiver"
    assert (found["S9"]["status"], found["S9"]["smtp_code"]) == ("pending", 503)
    result = send_sms_batch(en["batch_id"], mailing=mailing, gateway=gateway, engine=engine, final_try=True)
    assert result.failed == 1
    found = delivery_rows(engine, run_id)
    assert (found["S9"]["status"], found["S9"]["reason"]) == (
        "failed",
        "retries exhausted: 503 Temporal failure, try again later.",
    )


def test_a_number_opted_out_during_the_run_gets_no_message(sms_audience):
    engine = sms_audience
    mailing = sms_mailing()
    run_id = freeze_audience(mailing, dag_run_id="sms-5", engine=engine)
    with engine.begin() as conn:  # a STOP arrives from S9's phone after the freeze
        conn.execute(
            text("UPDATE segmail_contacts SET sms_opt_out = :yes WHERE external_id = 'S9'"), {"yes": True}
        )
    gateway = FakeSmsGateway()
    send_all(engine, run_id, mailing, gateway)
    assert "+14165550199" not in gateway.numbers
    assert (delivery_rows(engine, run_id)["S9"]["status"], delivery_rows(engine, run_id)["S9"]["reason"]) == (
        "skipped",
        "opted out during the run",
    )
