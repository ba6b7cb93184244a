"""The public app's SMS routes on a real uvicorn server, as a gateway calls them: delivery reports
(`/sms/dlr/TOKEN`) and inbound messages (`/sms/in/SECRET`), on SQLite and PostgreSQL."""

from __future__ import annotations

import httpx
import pytest
from feedback_support import serve_public_app
from segmail.feedback.tokens import TokenPurpose, TokenSigner
from segmail.sms.reports import inbound_secret
from sms_support import activity_kinds, delivery_rows, sms_opt_outs, sms_run
from tests_support import TEST_SIGNING_KEY as KEY

NUMBERS = ["+436641000021", "+436641000022", "+436641000023", "+436641000024"]


@pytest.fixture
def sms(engine):
    """(public app URL, run id, delivery ids): four sent messages awaiting their reports."""
    run, ids = sms_run(engine, NUMBERS)
    with serve_public_app(engine) as url:
        yield url, run, ids


def token(delivery: int, purpose: TokenPurpose = TokenPurpose.SMS_REPORT, key: bytes = KEY) -> str:
    return TokenSigner((key,)).sign(purpose, delivery)


def report(url: str, delivery_token: str, status: object, answer: str = "") -> httpx.Response:
    return httpx.get(f"{url}/sms/dlr/{delivery_token}", params={"status": status, "answer": answer})


def test_final_reports_land_on_the_delivery_and_in_the_activity_log_once(sms, engine):
    url, run, ids = sms
    answers = [
        report(url, token(ids[0]), 1),
        report(url, token(ids[1]), 2, "id:7 sub:001 dlvrd:000 stat:UNDELIV err:001"),
        report(url, token(ids[2]), 2, "id:8 sub:001 dlvrd:000 stat:EXPIRED err:000"),
        report(url, token(ids[3]), 16),
    ]
    assert [(a.status_code, a.text) for a in answers] == [
        (200, "applied: delivered"),
        (200, "applied: delivery report: failed (id:7 sub:001 dlvrd:000 stat:UNDELIV err:001)"),
        (200, "applied: delivery report: expired (id:8 sub:001 dlvrd:000 stat:EXPIRED err:000)"),
        (200, "applied: delivery report: rejected by the SMS centre"),
    ]
    rows = delivery_rows(engine, ids)
    assert [rows[i][0] for i in ids] == ["delivered", "failed", "expired", "failed"]
    assert rows[ids[0]][1] is None and all(reported for _, _, reported in rows.values())
    before = activity_kinds(engine, "sms report")
    assert len(before) == 4 and {r for _, r, _ in before} == {run}
    # A repeated report, or a later one contradicting a final status, changes nothing.
    again = report(url, token(ids[0]), 2)
    assert (again.status_code, again.text) == (200, "already: already delivered")
    assert delivery_rows(engine, ids) == rows and activity_kinds(engine, "sms report") == before


def test_an_intermediate_report_changes_nothing(sms, engine):
    url, _, ids = sms
    answer = report(url, token(ids[0]), 8)
    assert (answer.status_code, answer.text) == (200, "ignored: intermediate report 8")
    assert delivery_rows(engine, ids)[ids[0]] == ("sent", None, False)


FORGERIES = {
    "altered-signature": lambda d: token(d)[:-2] + "aa",
    "altered-delivery": lambda d: token(d).replace(".", ".1", 1),
    "other-key": lambda d: token(d, key=b"another-key-0123456789abcdef"),
    "unsubscribe-token": lambda d: token(d, TokenPurpose.UNSUBSCRIBE),
    "unknown-delivery": lambda d: token(10**9),
    "garbage": lambda d: "not-a-token",
    "nul-and-long": lambda d: "%00" + "x" * 3000,
}
ODD_QUERIES = {
    "no-status": "",
    "empty": "status=",
    "word": "status=delivered",
    "negative": "status=-1",
    "zero": "status=0",
    "huge": "status=99999999999999999999",
    "nul": "status=%00",
    "arabic-digit": "status=%D9%A1",
    "repeated-and-bad-bytes": "status=2&status=8&answer=%FF%FE%00",
}


def test_forged_report_tokens_change_nothing_and_say_so(sms, engine):
    url, _, ids = sms
    before = delivery_rows(engine, ids)
    for name, make_token in FORGERIES.items():
        for answer in (
            report(url, make_token(ids[0]), 1),
            httpx.post(f"{url}/sms/dlr/{make_token(ids[0])}?status=1"),
        ):
            assert answer.status_code in (400, 404), name
            assert (
                answer.status_code == 404 or answer.text == "invalid delivery report token: nothing changed"
            )
    assert delivery_rows(engine, ids) == before and activity_kinds(engine, "sms report") == []


def test_any_query_value_answers_4xx_or_applies_never_500(sms, engine):
    url, _, ids = sms
    for name, query in ODD_QUERIES.items():
        answer = httpx.get(f"{url}/sms/dlr/{token(ids[0])}?{query}")
        assert answer.status_code in (200, 400), (name, answer.text)
        if answer.status_code == 400:
            assert answer.text.startswith("status must be"), name
    assert delivery_rows(engine, ids)[ids[0]][0] == "sent"  # 8 (the last repeated value) is intermediate


def inbound(url: str, secret: str, **query: str) -> httpx.Response:
    return httpx.get(f"{url}/sms/in/{secret}", params=query)


def test_inbound_stop_words_opt_the_number_out_and_other_texts_are_kept_as_replies(sms, engine):
    url, run, _ = sms
    secret = inbound_secret((KEY,))
    replies = [
        inbound(url, secret, **{"from": NUMBERS[0].lstrip("+"), "text": "stop"}),  # international, no plus
        inbound(url, secret, **{"from": "00" + NUMBERS[1][1:], "text": "Arrêt, merci"}),
        inbound(url, secret, **{"from": NUMBERS[2], "text": "Please stop texting"}),  # not the first word
        inbound(url, secret, **{"from": "+436649999999", "text": "STOP"}),
        inbound(url, secret, **{"from": NUMBERS[0], "text": "STOP"}),
        inbound(url, secret, **{"from": NUMBERS[3], "text": "   "}),
    ]
    assert [(r.status_code, r.text, r.headers["x-segmail-outcome"]) for r in replies] == [
        (200, "", "opted out"),
        (200, "", "opted out"),
        (200, "", "reply logged"),
        (200, "", "no contact has this number"),
        (200, "", "already opted out"),
        (200, "", "not a stop word"),
    ]
    states = sms_opt_outs(engine)
    assert states["G1"] == (True, "sms stop", run, False) and states["G2"][:3] == (True, "sms stop", run)
    assert not states["G3"][0] and not states["G4"][0]
    assert [d for _, _, d in activity_kinds(engine, "sms opt-out")] == [
        f"STOP from {NUMBERS[0]}",
        f"ARRÊT from {NUMBERS[1]}",
    ]
    assert [d for _, _, d in activity_kinds(engine, "sms reply")] == [
        f"from {NUMBERS[2]}: Please stop texting"
    ]


BAD_INBOUND = {
    "wrong-secret": ("0" * 32, {"from": NUMBERS[0], "text": "STOP"}, 403),
    "short-secret": ("short", {"from": NUMBERS[0], "text": "STOP"}, 403),
    "no-sender": (None, {"text": "STOP"}, 400),
    "nul": (None, {"from": "\x00+43", "text": "STOP\x00"}, 200),
    "alphanumeric-sender": (None, {"from": "Autohaus", "text": "STOP"}, 200),
    "emoji-flood": (None, {"from": NUMBERS[0], "text": "\U0001f600" * 2000}, 200),
}


def test_bad_inbound_requests_change_nothing_and_never_fail(sms, engine):
    url, _, _ = sms
    for name, (secret, query, status) in BAD_INBOUND.items():
        answer = inbound(url, secret or inbound_secret((KEY,)), **query)
        assert answer.status_code == status and "Traceback" not in answer.text, name
    assert not any(state[0] for state in sms_opt_outs(engine).values())


def test_only_the_sms_routes_are_added(sms):
    url, _, _ = sms
    for path in ("/sms", "/sms/", "/sms/dlr", "/sms/dlr/", "/sms/in", "/sms/in/", "/sms/other/x"):
        assert httpx.get(f"{url}{path}").status_code in (404, 405), path


def test_a_database_out_of_reach_answers_503_for_the_gateway_to_retry():
    from segmail.store.db import make_engine

    unreachable = make_engine("postgresql+psycopg://segmail@127.0.0.1:1/segmail?connect_timeout=2")
    with serve_public_app(unreachable) as url:
        answers = [
            report(url, token(1), 1),
            inbound(url, inbound_secret((KEY,)), **{"from": NUMBERS[0], "text": "STOP"}),
        ]
    assert [(a.status_code, a.text) for a in answers] == [(503, "temporarily unavailable: try again")] * 2
