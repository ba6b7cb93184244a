"""KannelGateway against a real Kannel (bearerbox + smsbox, fakesmsc as the SMS centre): what the SMS
centre receives, Kannel's answers, and delivery reports and STOP replies reaching the real public
app (uvicorn) — on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from segmail.dev.smtpsink import free_port
from segmail.sms.gateway import SmsEncoding, SmsMessage, SubmitResult
from segmail.sms.kannel import KannelConfig, KannelGateway, gateway_for
from segmail.sms.reports import report_url
from sms_support import activity_kinds, delivery_rows, sms_opt_outs, sms_run, wait_for

GSM7, UCS2 = SmsEncoding.GSM7, SmsEncoding.UCS2
LONG_UCS2 = "Bonjour Zoë, votre révision est prévue. " * 3  # 120 characters: 2 UCS-2 parts


def message(to: str, text: str, encoding: SmsEncoding, delivery_id: int | None = None) -> SmsMessage:
    url = report_url(delivery_id) if delivery_id is not None else None
    return SmsMessage(to=to, sender="Autohaus", text=text, encoding=encoding, report_url=url)


def test_messages_reach_the_sms_centre_in_their_encoding_and_reports_mark_them_delivered(kannel, engine):
    numbers = ["+436641000001", "+436641000002", "+33612000003"]
    run, ids = sms_run(engine, numbers)
    before = len(kannel.kannel.received())
    with gateway_for("sms_default") as gateway:
        answers = [
            gateway.submit(
                message(numbers[0], "Hallo Gerda, Ihr Service ist fällig: 20 € Rabatt", GSM7, ids[0])
            ),
            gateway.submit(message(numbers[1], "Привет! Ваш сервис", UCS2, ids[1])),
            gateway.submit(message(numbers[2], LONG_UCS2, UCS2, ids[2])),
        ]
    assert {(a.result, a.code, a.reply) for a in answers} == {
        (SubmitResult.ACCEPTED, 202, "0: Accepted for delivery")
    }
    got = {sms.to: sms for sms in kannel.kannel.wait_received(3, since=before)}
    assert (got[numbers[0]].text, got[numbers[0]].encoding) == (
        "Hallo Gerda, Ihr Service ist fällig: 20 € Rabatt",
        GSM7,
    )
    assert (got[numbers[1]].text, got[numbers[1]].encoding) == ("Привет! Ваш сервис", UCS2)
    assert (got[numbers[2]].text, got[numbers[2]].encoding, got[numbers[2]].parts) == (LONG_UCS2, UCS2, 2)
    assert {sms.sender for sms in got.values()} == {"Autohaus"}
    rows = wait_for(
        lambda: delivery_rows(engine, ids),
        until=lambda rows: {status for status, _, _ in rows.values()} == {"delivered"},
        what="three delivery reports",
    )
    assert all(reported for _, _, reported in rows.values())
    assert [(run_id, detail) for _, run_id, detail in activity_kinds(engine, "sms report")] == [
        (run, "delivered")
    ] * 3


def test_one_keep_alive_connection_serves_many_messages(kannel, engine):
    numbers = [f"+4366420000{i:02d}" for i in range(20)]
    before = len(kannel.kannel.received())
    with gateway_for("sms_default") as gateway:
        first = gateway.submit(message(numbers[0], "Hallo", GSM7))
        connection = gateway._connection
        answers = [gateway.submit(message(n, "Hallo", GSM7)) for n in numbers[1:]]
        assert gateway._connection is connection and connection is not None
    assert {a.result for a in [first, *answers]} == {SubmitResult.ACCEPTED}
    assert sorted(sms.to for sms in kannel.kannel.wait_received(20, since=before)) == numbers


@pytest.mark.parametrize(
    ("change", "to", "expected"),
    [
        pytest.param({}, "not-a-number", (SubmitResult.REJECTED, 400), id="bad-number"),
        pytest.param({"password": "wrong"}, "+436641000009", (SubmitResult.REJECTED, 403), id="bad-password"),
        pytest.param({"port": None}, "+436641000009", (SubmitResult.TRANSIENT, None), id="unreachable"),
    ],
)
def test_kannels_answers_are_classified(kannel_lab, change, to, expected):
    lab = kannel_lab.kannel
    conn = lab.connection()
    config = KannelConfig(
        host="127.0.0.1",
        port=free_port() if "port" in change else lab.sendsms_port,
        username=conn["login"],
        password=change.get("password", conn["password"]),
        smsc="phones",
    )
    with KannelGateway(config) as gateway:
        answer = gateway.submit(message(to, "Hallo", GSM7))
    assert (answer.result, answer.code) == expected
    assert answer.reply


def test_a_stop_from_a_phone_opts_its_number_out_of_sms_only(kannel, engine):
    shared, other = "+436641000011", "+436641000012"
    run, _ = sms_run(engine, [shared, shared, other, "+436641000013"])
    kannel.kannel.inject_mo(sender=shared, text="Stopp bitte")
    states = wait_for(lambda: sms_opt_outs(engine), until=lambda s: s["G1"][0], what="the STOP")
    # Both contacts sharing the number, with source and the run that texted it; e-mail untouched.
    assert states["G1"] == states["G2"] == (True, "sms stop", run, False)
    assert states["G3"][0] is False
    kannel.kannel.inject_mo(sender=other, text="Hello, when is my appointment?")
    kannel.kannel.inject_mo(sender="+436641000013", text="ARRÊT")
    states = wait_for(lambda: sms_opt_outs(engine), until=lambda s: s["G4"][0], what="the ARRÊT")
    assert states["G3"][0] is False and states["G4"][:2] == (True, "sms stop")
    details = [detail for _, _, detail in activity_kinds(engine, "sms opt-out")]
    assert details == [f"STOPP from {shared}", f"STOPP from {shared}", "ARRÊT from +436641000013"]
