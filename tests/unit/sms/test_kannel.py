"""KannelGateway's request building, answer classification and connection settings, without Kannel."""

from __future__ import annotations

import json
from urllib.parse import parse_qs

import pytest
from segmail.errors import SegmailError
from segmail.sms.gateway import SmsEncoding, SmsMessage, SubmitResult
from segmail.sms.kannel import DLR_MASK, KannelConfig, classify, config_for, dlr_url, sendsms_query

CONFIG = KannelConfig(host="kannel", port=13013, username="segmail", password="p&ss w", smsc="operator")


def query(message: SmsMessage, config: KannelConfig = CONFIG) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(sendsms_query(message, config), strict_parsing=True).items()}


def test_a_gsm7_message_goes_as_utf8_text_with_its_report_url_and_kannels_escapes():
    sent = query(
        SmsMessage(
            to="+436641234567",
            sender="Autohaus",
            text="Grüße & 20 € + mehr",
            encoding=SmsEncoding.GSM7,
            report_url="https://mail.example/sms/dlr/r.1.2.abc",
        )
    )
    assert sent == {
        "username": "segmail",
        "password": "p&ss w",
        "from": "Autohaus",
        "to": "+436641234567",
        "text": "Grüße & 20 € + mehr",
        "charset": "UTF-8",
        "smsc": "operator",
        "dlr-mask": str(DLR_MASK),
        "dlr-url": "https://mail.example/sms/dlr/r.1.2.abc?status=%d&answer=%A",
    }
    assert DLR_MASK == 1 + 2 + 16  # delivered, failed, rejected by the SMSC


def test_a_ucs2_message_asks_for_coding_2_and_without_report_url_no_dlr():
    sent = query(
        SmsMessage(to="+33612345678", sender="", text="Arrêt", encoding=SmsEncoding.UCS2),
        KannelConfig(host="k", port=1, username="u", password="p", default_sender="Garage"),
    )
    assert sent["coding"] == "2" and sent["charset"] == "UTF-8" and sent["from"] == "Garage"
    assert "dlr-url" not in sent and "dlr-mask" not in sent and "smsc" not in sent


def test_dlr_url_keeps_an_existing_query():
    assert dlr_url("https://x.example/r?a=1") == "https://x.example/r?a=1&status=%d&answer=%A"


@pytest.mark.parametrize(
    ("status", "reply", "result"),
    [
        pytest.param(202, "0: Accepted for delivery", SubmitResult.ACCEPTED, id="accepted"),
        pytest.param(202, "3: Queued for later delivery", SubmitResult.ACCEPTED, id="queued"),
        pytest.param(400, "Missing receiver number, rejected", SubmitResult.REJECTED, id="bad-request"),
        pytest.param(403, "Authorization failed for sendsms", SubmitResult.REJECTED, id="forbidden"),
        pytest.param(503, "Temporal failure, try again later.", SubmitResult.TRANSIENT, id="busy"),
        pytest.param(500, "", SubmitResult.TRANSIENT, id="server-error"),
    ],
)
def test_kannels_answers(status, reply, result):
    answer = classify(status, reply)
    assert (answer.result, answer.code, answer.reply) == (result, status, reply)


def test_the_connection_configures_the_gateway(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMS_TEST",
        json.dumps(
            {
                "conn_type": "http",
                "host": "kannel.internal",
                "port": 13013,
                "login": "segmail",
                "password": "secret",
                "extra": {"default_sender": "Autohaus", "smsc": "smpp1", "timeout": 5},
            }
        ),
    )
    config = config_for("sms_test")
    assert (config.host, config.port, config.username, config.password) == (
        "kannel.internal",
        13013,
        "segmail",
        "secret",
    )
    assert (config.default_sender, config.smsc, config.path, config.timeout) == (
        "Autohaus",
        "smpp1",
        "/cgi-bin/sendsms",
        5.0,
    )


def test_a_missing_connection_says_which_and_how(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_SMS_NOWHERE", raising=False)
    with pytest.raises(SegmailError, match="AIRFLOW_CONN_SMS_NOWHERE"):
        config_for("sms_nowhere")
