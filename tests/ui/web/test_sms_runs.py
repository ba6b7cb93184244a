"""SMS runs on the monitoring pages (SQLite and PostgreSQL): the number instead of the address,
the delivery-report statuses, the channel on the list of runs, and the CSV export."""

from __future__ import annotations

import csv
import io

from fake_sms_support import SMS_SENT_TO, FakeSmsGateway, seed_sms_audience, sms_mailing
from sqlalchemy import text


def sms_run(engine, tmp_path) -> int:
    """An SMS run sent through the fake gateway; then one delivery report for S1, one expiry for S9."""
    from segmail.mailings.audience import freeze_audience
    from segmail.mailings.deliveries import plan_batches
    from segmail.sms.send import send_sms_batch

    seed_sms_audience(engine, tmp_path)
    mailing = sms_mailing()
    run_id = freeze_audience(mailing, dag_run_id="sms-ui", engine=engine)
    for batch in plan_batches(run_id, batch_size=100, engine=engine):
        send_sms_batch(batch["batch_id"], mailing=mailing, gateway=FakeSmsGateway(), engine=engine)
    with engine.begin() as conn:
        for number, status in (("+436641234567", "delivered"), ("+14165550199", "expired")):
            conn.execute(
                text(
                    "UPDATE segmail_deliveries SET status = :s WHERE mailing_run_id = :r AND mobile_e164 = :n"
                ),
                {"s": status, "r": run_id, "n": number},
            )
    return run_id


def test_the_run_page_shows_numbers_and_report_statuses(engine, monitoring_client, tmp_path):
    run_id = sms_run(engine, tmp_path)
    page = monitoring_client.get(f"/segmail/runs/{run_id}").text
    assert "<th>Number</th>" in page and "<th>E-mail</th>" not in page
    for number in SMS_SENT_TO.values():
        assert f'<td class="recipient">{number}</td>' in page
    assert "@example" not in page.split('id="mails"')[1]  # the frozen number, not the address
    cards = {s: f'<b id="total-{s}">{n}</b>' for s, n in (("sent", 1), ("delivered", 1), ("expired", 1))}
    assert all(card in page for card in cards.values()), page
    assert '<b id="total-skipped">4</b>' in page
    assert "no mobile number" in page and "duplicate number" in page

    found = monitoring_client.get(f"/segmail/runs/{run_id}?q=%2B4366").text
    assert "+436641234567" in found and "+14165550199" not in found


def test_an_email_run_page_has_no_report_statuses(newsletter_audience, monitoring_client):
    from segmail.mailings.audience import freeze_audience
    from segmail.mailings.definition import get_mailing

    run_id = freeze_audience(get_mailing("newsletter"), dag_run_id="mail-ui", engine=newsletter_audience)
    page = monitoring_client.get(f"/segmail/runs/{run_id}").text
    assert (
        "<th>E-mail</th>" in page and 'id="total-delivered"' not in page and 'id="total-expired"' not in page
    )


def test_the_list_of_runs_marks_sms_runs_and_counts_reported_messages_as_sent(
    engine, monitoring_client, tmp_path
):
    run_id = sms_run(engine, tmp_path)
    page = monitoring_client.get("/segmail/").text
    row = page.split(f'id="run-{run_id}"')[1].split("</tr>")[0]
    assert '<span class="badge outline channel">SMS</span>' in row
    assert '<td class="num">3</td>' in row  # sent 1 + delivered 1 + expired 1
    (run,) = [r for r in monitoring_client.get("/segmail/api/runs").json() if r["run"] == run_id]
    assert (run["channel"], run["statuses"]["delivered"], run["statuses"]["expired"]) == ("sms", 1, 1)


def test_the_csv_export_has_the_number(engine, monitoring_client, tmp_path):
    run_id = sms_run(engine, tmp_path)
    body = monitoring_client.get(f"/segmail/runs/{run_id}/mails.csv").text.lstrip("\ufeff")
    rows = list(csv.DictReader(io.StringIO(body)))
    # A leading + would start a formula in a spreadsheet: the cell is quoted as text, as every such cell.
    sent = {r["mobile_e164"] for r in rows if r["status"] != "skipped"}
    assert sent == {f"'{number}" for number in SMS_SENT_TO.values()}
    assert {r["email"] for r in rows} == {""}
