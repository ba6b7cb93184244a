"""The public unsubscribe app on a real uvicorn server, against SQLite and PostgreSQL (RFC 8058)."""

from __future__ import annotations

import httpx
import pytest
from segmail.feedback.tokens import TokenPurpose, TokenSigner
from segmail.mailings.audience import freeze_audience
from segmail.mailings.definition import get_mailing
from sqlalchemy import text
from tests_support import TEST_SIGNING_KEY as KEY

ONE_CLICK = {"List-Unsubscribe": "One-Click"}


@pytest.fixture
def run(newsletter_audience):
    return freeze_audience(
        get_mailing("newsletter"), dag_run_id="unsubscribe-test", engine=newsletter_audience
    )


def delivery_id(engine, run_id: int, external_id: str) -> int:
    with engine.connect() as conn:
        return conn.execute(
            text(
                "SELECT d.id FROM segmail_deliveries d JOIN segmail_contacts c ON c.id = d.contact_id"
                " WHERE d.mailing_run_id = :r AND c.external_id = :e"
            ),
            {"r": run_id, "e": external_id},
        ).scalar_one()


def opt_outs(engine) -> dict[str, tuple]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT external_id, email_opt_out, email_opt_out_source, email_opt_out_run_id"
                " FROM segmail_contacts ORDER BY external_id"
            )
        ).all()
    return {r[0]: (bool(r[1]), r[2], r[3]) for r in rows}


def feedback_rows(engine) -> tuple[list, list, list]:
    with engine.connect() as conn:
        suppressions = conn.execute(
            text("SELECT address_key, source, mailing_run_id FROM segmail_suppressions")
        ).all()
        activity = conn.execute(
            text("SELECT contact_id, kind, detail FROM segmail_activity_log WHERE kind = 'unsubscribe'")
        ).all()
        unsubscribed = conn.execute(
            text("SELECT id FROM segmail_deliveries WHERE unsubscribed_at IS NOT NULL")
        ).all()
    return [tuple(r) for r in suppressions], [tuple(r) for r in activity], [r[0] for r in unsubscribed]


def token(delivery: int, purpose: TokenPurpose = TokenPurpose.UNSUBSCRIBE, key: bytes = KEY) -> str:
    return TokenSigner((key,)).sign(purpose, delivery)


def test_get_shows_the_page_in_the_contacts_language_and_changes_nothing(
    public_url, run, newsletter_audience
):
    engine = newsletter_audience
    before = opt_outs(engine)
    page = httpx.get(f"{public_url}/u/{token(delivery_id(engine, run, 'E1'))}")
    assert page.status_code == 200
    assert (
        '<html lang="de">' in page.text
        and "Möchten Sie „Monthly newsletter“ an anna@example.com" in page.text
    )
    assert 'name="List-Unsubscribe" value="One-Click"' in page.text
    assert page.headers["referrer-policy"] == "no-referrer"
    french = httpx.get(f"{public_url}/u/{token(delivery_id(engine, run, 'E2'))}")
    assert '<html lang="fr">' in french.text and "Se désabonner" in french.text
    assert opt_outs(engine) == before
    assert feedback_rows(engine) == ([], [], [])


def test_one_click_post_opts_the_address_out_once(public_url, run, newsletter_audience):
    engine = newsletter_audience
    anna = delivery_id(engine, run, "E1")
    url = f"{public_url}/u/{token(anna)}"
    first = httpx.post(url, data=ONE_CLICK)
    assert first.status_code == 200 and "Erledigt: anna@example.com" in first.text
    states = opt_outs(engine)
    # The address is opted out for both contacts sharing it (E7 is ANNA@example.com), with source and run.
    assert states["E1"] == (True, "one-click", run) and states["E7"] == (True, "one-click", run)
    assert states["E2"][0] is False
    again = httpx.post(url, data=ONE_CLICK)
    assert again.status_code == 200 and "bereits abgemeldet" in again.text
    suppressions, activity, unsubscribed = feedback_rows(engine)
    assert suppressions == [("anna@example.com", "one-click", run)]
    assert len(activity) == 1 and activity[0][1:] == ("unsubscribe", "unsubscribed (one-click)")
    assert unsubscribed == [anna]


def test_multipart_one_click_and_the_pages_button_both_work(public_url, run, newsletter_audience):
    engine = newsletter_audience
    multipart = httpx.post(
        f"{public_url}/u/{token(delivery_id(engine, run, 'E2'))}",
        files={"List-Unsubscribe": (None, "One-Click")},
    )
    assert multipart.status_code == 200
    button = httpx.post(
        f"{public_url}/u/{token(delivery_id(engine, run, 'E3'))}", data={**ONE_CLICK, "via": "page"}
    )
    assert button.status_code == 200
    states = opt_outs(engine)
    assert states["E2"][:2] == (True, "one-click") and states["E3"][:2] == (True, "unsubscribe page")


@pytest.mark.parametrize(
    "make_token",
    [
        pytest.param(lambda d: token(d)[:-2] + "aa", id="altered-signature"),
        pytest.param(lambda d: token(d).replace(".", ".1", 1), id="altered-delivery"),
        pytest.param(lambda d: token(d, key=b"another-key-0123456789abcdef"), id="other-key"),
        pytest.param(lambda d: token(d, TokenPurpose.BOUNCE), id="bounce-token"),
        pytest.param(lambda d: token(10**9), id="unknown-delivery"),
        pytest.param(lambda d: "not-a-token", id="garbage"),
        pytest.param(lambda d: "%00" + "x" * 3000, id="nul-and-long"),
    ],
)
def test_forged_or_altered_tokens_change_nothing_and_reveal_nothing(
    public_url, run, newsletter_audience, make_token
):
    engine = newsletter_audience
    before = opt_outs(engine)
    url = f"{public_url}/u/{make_token(delivery_id(engine, run, 'E1'))}"
    for response in (httpx.get(url), httpx.post(url, data=ONE_CLICK)):
        assert response.status_code in (400, 404)
        assert "anna" not in response.text.lower() and "Traceback" not in response.text
    assert opt_outs(engine) == before
    assert feedback_rows(engine) == ([], [], [])


def test_a_test_mail_link_shows_the_page_but_changes_nothing(public_url, run, newsletter_audience):
    engine = newsletter_audience
    before = opt_outs(engine)
    url = f"{public_url}/u/{token(0, TokenPurpose.TEST)}"
    assert "test mail" in httpx.get(url).text
    assert httpx.post(url, data=ONE_CLICK).status_code == 200
    assert opt_outs(engine) == before


def test_post_without_one_click_or_too_large_changes_nothing(public_url, run, newsletter_audience):
    engine = newsletter_audience
    url = f"{public_url}/u/{token(delivery_id(engine, run, 'E1'))}"
    before = opt_outs(engine)
    assert httpx.post(url, data={"List-Unsubscribe": "Other"}).status_code == 400
    assert httpx.post(url, content=b"List-Unsubscribe=One-Click&" + b"x" * 20_000).status_code == 413
    assert opt_outs(engine) == before


def test_the_app_exposes_nothing_else(public_url):
    for path in ("/docs", "/redoc", "/openapi.json", "/", "/u/", "/admin"):
        assert httpx.get(f"{public_url}{path}").status_code in (404, 405), path
    assert httpx.get(f"{public_url}/healthz").text == "ok"
