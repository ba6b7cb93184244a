"""End to end: a real SMTP server receives the newsletter; the recipient's one-click POST to the
running public app opts the address out; the next run skips it. Also the send-time checks:
a synchronous "no such user" suppresses the address, and opt-outs that arrive mid-run block mails."""

from __future__ import annotations

import httpx
from mailing_support import send_newsletter
from segmail.contacts.optouts import set_opt_out
from segmail.contacts.suppressions import add_suppression
from segmail.mailings.audience import freeze_audience
from segmail.mailings.definition import get_mailing
from segmail.mailings.deliveries import DeliveryStore, plan_batches
from sqlalchemy import text

PUBLIC_URL = "https://unsubscribe.autohaus-demo.example"  # SEGMAIL_PUBLIC_URL in tests/conftest.py


def outcomes(engine, run_id: int) -> dict[str, tuple[str, str | None]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT c.external_id, d.status, d.reason FROM segmail_deliveries d"
                " JOIN segmail_contacts c ON c.id = d.contact_id WHERE d.mailing_run_id = :r"
            ),
            {"r": run_id},
        ).all()
    return {external_id: (status, reason) for external_id, status, reason in rows}


def test_one_click_from_a_received_mail_stops_the_next_run(newsletter_audience, smtp_sink, public_url):
    engine = newsletter_audience
    first = send_newsletter(engine, "first")
    (anna,) = [m.parsed() for m in smtp_sink.messages if "anna@example.com" in m.recipients]
    https, mailto = [link.strip(" <>") for link in str(anna["List-Unsubscribe"]).split(",")]
    assert anna["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert https.startswith(PUBLIC_URL + "/u/") and mailto.startswith("mailto:unsubscribe+")
    assert https in anna.get_body(("html",)).get_content()  # the visible link in the footer
    # The mail client POSTs to the URL it was given; here the proxy in front of the app is skipped.
    answer = httpx.post(https.replace(PUBLIC_URL, public_url), data={"List-Unsubscribe": "One-Click"})
    assert answer.status_code == 200 and "Erledigt" in answer.text

    second = send_newsletter(engine, "second")
    after = outcomes(engine, second)
    assert after["E1"] == ("skipped", "opted out")
    assert after["E7"][0] == "skipped"  # E7 shares anna's address
    assert after["E2"][0] == "sent"
    assert outcomes(engine, first)["E1"][0] == "sent"  # the first run's record stays as it was


def test_no_such_user_at_send_time_suppresses_the_address(newsletter_audience, smtp_sink):
    engine = newsletter_audience
    smtp_sink.handler.refuse["giulia@example.it"] = (
        "550 5.1.1 <giulia@example.it>: Recipient address rejected: User unknown"
    )
    first = send_newsletter(engine, "first")
    assert outcomes(engine, first)["E3"][0] == "failed"
    with engine.connect() as conn:
        suppression = conn.execute(
            text(
                "SELECT reason, source, mailing_run_id FROM segmail_suppressions WHERE address_key = 'giulia@example.it'"
            )
        ).one()
        bounce = conn.execute(
            text("SELECT detail FROM segmail_activity_log WHERE kind = 'bounce'")
        ).scalar_one()
    assert suppression.reason.startswith("hard bounce: 550 5.1.1") and suppression.source == "smtp rejection"
    assert suppression.mailing_run_id == first and "User unknown" in bounce
    second = send_newsletter(engine, "second")
    status, reason = outcomes(engine, second)["E3"]
    assert status == "skipped" and reason.startswith("suppressed: hard bounce: 550 5.1.1")


def test_opt_outs_and_suppressions_after_the_freeze_block_the_mails_not_yet_sent(newsletter_audience):
    engine = newsletter_audience
    mailing = get_mailing("newsletter")
    run_id = freeze_audience(mailing, dag_run_id="mid-run", engine=engine)
    batches = plan_batches(run_id, batch_size=500, engine=engine)
    set_opt_out(key="E1", opted_out=True, engine=engine)  # anna, after the audience was frozen
    add_suppression(address="chloe@example.ca", reason="asked by phone", engine=engine)
    blocked = {}
    for batch in batches:
        blocked.update(DeliveryStore(engine).blocked(batch["batch_id"]))
    with engine.connect() as conn:
        ids = dict(
            conn.execute(
                text(
                    "SELECT c.external_id, d.id FROM segmail_deliveries d JOIN segmail_contacts c"
                    " ON c.id = d.contact_id WHERE d.mailing_run_id = :r"
                ),
                {"r": run_id},
            ).all()
        )
    assert blocked == {
        ids["E1"]: "opted out during the run",
        ids["E2"]: "suppressed during the run: asked by phone",
    }
