"""The unsubscribe page in a real browser (Chromium): a de-AT contact opens the link of her mail,
sees the page in German, clicks the button and sees the German confirmation; only the click
(a POST) opts her address out."""

from __future__ import annotations

import pytest
from feedback_support import serve_public_app
from segmail.feedback.links import UnsubscribeLinks
from segmail.feedback.tokens import TokenSigner
from segmail.mailings.audience import freeze_audience
from segmail.mailings.definition import get_mailing
from sqlalchemy import text
from tests_support import TEST_SIGNING_KEY


@pytest.fixture
def frozen_run(newsletter_audience) -> int:
    return freeze_audience(get_mailing("newsletter"), dag_run_id="browser-test", engine=newsletter_audience)


def anna(engine, run_id: int) -> dict:
    """E1, Anna Müller (de-AT): her delivery of the run and her opt-out, as the database holds them."""
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT d.id AS delivery, d.unsubscribed_at, c.email_opt_out, c.email_opt_out_source,"
                " c.email_opt_out_run_id FROM segmail_deliveries d JOIN segmail_contacts c ON c.id = d.contact_id"
                " WHERE d.mailing_run_id = :r AND c.external_id = 'E1'"
            ),
            {"r": run_id},
        ).one()
    return dict(row._mapping)


def test_a_de_at_contact_unsubscribes_in_german(newsletter_audience, frozen_run, browser, screenshots):
    engine = newsletter_audience
    before = anna(engine, frozen_run)
    with serve_public_app(engine) as public_url:
        links = UnsubscribeLinks(TokenSigner((TEST_SIGNING_KEY,)), public_url, None)
        link = links.for_delivery(before["delivery"]).url  # what her mail carries, on this server
        page = browser.new_page(locale="de-AT")
        try:
            page.goto(link)
            assert page.locator("html").get_attribute("lang") == "de"
            assert page.title() == "Abmelden"
            question = page.locator("#message").inner_text()
            assert question == "Möchten Sie „Monthly newsletter“ an anna@example.com nicht mehr erhalten?"
            page.screenshot(path=str(screenshots / "unsubscribe-question.png"))
            assert anna(engine, frozen_run) == before  # opening the link changes nothing

            page.locator("#unsubscribe").click()
            page.wait_for_load_state()
            done = page.locator("#message").inner_text()
            assert done == "Erledigt: anna@example.com erhält diese E-Mails nicht mehr."
            assert page.locator("#unsubscribe").count() == 0
            page.screenshot(path=str(screenshots / "unsubscribe-done.png"))
        finally:
            page.close()
    after = anna(engine, frozen_run)
    assert (after["email_opt_out"], after["email_opt_out_source"]) == (True, "unsubscribe page")
    assert after["email_opt_out_run_id"] == frozen_run and after["unsubscribed_at"] is not None
