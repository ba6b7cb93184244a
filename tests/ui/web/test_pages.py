"""The monitoring pages in a real api-server: login required, data shown, and a real browser."""

from __future__ import annotations

import csv
import io
from urllib.parse import quote

import httpx


def paths(ids: dict) -> list[str]:
    return [
        "/segmail/",
        "/segmail/api/runs",
        f"/segmail/runs/{ids['run_id']}",
        f"/segmail/api/runs/{ids['run_id']}/mails",
        f"/segmail/runs/{ids['run_id']}/mails.csv",
        f"/segmail/contacts/{ids['sent_contact']}",
        "/segmail/contacts?q=gruber",
        "/segmail/imports",
        f"/segmail/imports/{ids['import_run_id']}/issues.csv",
        "/segmail/suppressions",
        "/segmail/suppressions?q=phone&page=1",
        "/segmail/suppressions.csv",
    ]


def test_pages_and_data_endpoints_answer_only_to_logged_in_users(api_server):
    base, token, ids = api_server
    for path in paths(ids):
        assert httpx.get(base + path).status_code == 401, path
        assert httpx.get(base + path, headers={"Authorization": "Bearer not-a-jwt"}).status_code == 403, path
        assert httpx.get(base + path, cookies={"_token": "forged"}).status_code == 403, path
        assert httpx.get(base + path, headers={"Authorization": f"Bearer {token}"}).status_code == 200, path
        assert httpx.get(base + path, cookies={"_token": token}).status_code == 200, path


def test_data_endpoints_show_the_run_and_exports(api_server):
    base, token, ids = api_server
    auth = {"Authorization": f"Bearer {token}"}
    (run,) = [
        r for r in httpx.get(f"{base}/segmail/api/runs", headers=auth).json() if r["run"] == ids["run_id"]
    ]
    assert (run["sent"], run["failed"], run["skipped"], run["unsubscribed"]) == (19, 1, 1, 1)
    failed = httpx.get(f"{base}/segmail/api/runs/{ids['run_id']}/mails?status=failed", headers=auth).json()
    assert failed["total"] == 1 and failed["mails"][0]["smtp_code"] == 550
    exported = httpx.get(f"{base}/segmail/runs/{ids['run_id']}/mails.csv?status=sent", headers=auth)
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert len(rows) == 19 and {r["status"] for r in rows} == {"sent"}
    unsubscribed = [r["email"] for r in rows if r["unsubscribed_at"]]
    assert unsubscribed == ["camille.dubois@example.fr"]
    issues = httpx.get(f"{base}/segmail/imports/{ids['import_run_id']}/issues.csv", headers=auth).text
    assert "'+1" in issues and "Classic Cars" in issues


def test_unsubscribes_and_suppressions_are_shown(api_server):
    base, token, ids = api_server
    auth = {"Authorization": f"Bearer {token}"}
    runs = httpx.get(f"{base}/segmail/", headers=auth).text
    assert '<td class="num unsubscribed">1</td>' in runs
    run = httpx.get(f"{base}/segmail/runs/{ids['run_id']}?q=camille", headers=auth).text
    assert '<b id="total-unsubscribed">1</b>' in run and '<span class="st unsub">20' in run

    contact = httpx.get(f"{base}/segmail/contacts/{ids['sent_contact']}", headers=auth).text
    opt_out = contact[contact.index('<p id="opt-out">') :].split("</p>")[0]
    assert "source one-click" in opt_out and f"run #{ids['run_id']}</a>" in opt_out
    assert "<td>unsubscribe</td>" in contact and "unsubscribed (one-click)" in contact
    bounced = httpx.get(f"{base}/segmail/contacts/{ids['failed_contact']}", headers=auth).text
    assert '<p id="suppression">' in bounced and "hard bounce: 550 5.1.1" in bounced

    page = httpx.get(f"{base}/segmail/suppressions", headers=auth).text
    assert "3 address(es); page 1 of 1" in page
    for address in ("camille.dubois@example.fr", "lukas.gruber@example.at", "no.more@example.org"):
        assert f">{address}</a>" in page
    found = httpx.get(f"{base}/segmail/suppressions?q=PHONE", headers=auth).text
    assert "1 address(es) matching" in found and "no.more@example.org" in found
    exported = httpx.get(f"{base}/segmail/suppressions.csv?q=phone", headers=auth)
    assert exported.headers["content-disposition"] == 'attachment; filename="suppressions.csv"'
    (row,) = csv.DictReader(io.StringIO(exported.text))
    assert row["address"] == "no.more@example.org" and row["source"] == "manual"
    assert row["reason"] == '\'=HYPERLINK("https://evil.example","asked by phone")'  # no formula in Excel


def test_the_mailing_run_tab_of_a_dag_run_needs_a_login_and_opens_the_run(api_server):
    """What the plugin's `dag_run` external view loads, with the UI's {DAG_ID} and {RUN_ID} filled in."""
    base, token, ids = api_server
    path = "/segmail/dag-runs/mailing__newsletter/ui-test"  # the DAG run the seeded mailing run belongs to
    assert httpx.get(base + path).status_code == 401
    assert httpx.get(base + path, cookies={"_token": "forged"}).status_code == 403
    auth = {"Authorization": f"Bearer {token}"}
    found = httpx.get(base + path, headers=auth)
    assert found.status_code == 303
    assert found.headers["location"] == f"/segmail/runs/{ids['run_id']}"
    page = httpx.get(base + path, cookies={"_token": token}, follow_redirects=True)
    assert page.status_code == 200 and 'id="total-sent"' in page.text

    not_yet = quote("manual__2026-03-01T08:00:00+00:00", safe="")  # encoded as the UI encodes it
    missing = httpx.get(f"{base}/segmail/dag-runs/mailing__newsletter/{not_yet}", headers=auth)
    assert missing.status_code == 404
    assert (
        "DAG run manual__2026-03-01T08:00:00+00:00 of mailing__newsletter has no mailing run yet"
        in missing.text
    )
    other = httpx.get(f"{base}/segmail/dag-runs/contacts_import/manual__1", headers=auth)
    assert other.status_code == 404 and "contacts_import is not a mailing DAG" in other.text


def test_pages_in_a_real_browser(api_server, browser, screenshots):
    base, token, ids = api_server
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.add_cookies([{"name": "_token", "value": token, "url": base}])
    page = context.new_page()

    page.goto(f"{base}/segmail/")
    assert page.locator("#runs").get_by_text(f"#{ids['run_id']}").count() == 1
    assert page.locator("#chart rect").count() >= 3
    page.screenshot(path=str(screenshots / "runs.png"), full_page=True)

    page.locator("#runs a", has_text=f"#{ids['run_id']}").click()
    assert page.locator("#total-sent").inner_text() == "19"
    page.select_option("#status", "failed")
    page.click("#apply")
    page.wait_for_url("**status=failed**")
    assert page.locator("#mails tr").count() == 2  # header + the one rejected mail
    assert "550" in page.locator("#mails").inner_text()
    page.screenshot(path=str(screenshots / "run-failed.png"), full_page=True)
    page.select_option("#status", "")
    page.fill("#q", "example.fr")
    page.click("#apply")
    page.wait_for_url("**q=example.fr**")
    texts = page.locator("#mails tr td:nth-child(2)").all_inner_texts()
    assert texts and all(t.endswith("example.fr") for t in texts)

    page.goto(f"{base}/segmail/contacts/{ids['sent_contact']}")
    assert "Region France" in page.locator("#segments").inner_text()
    assert "votre lettre" in page.locator("#activity").inner_text()
    page.screenshot(path=str(screenshots / "contact.png"), full_page=True)

    page.goto(f"{base}/segmail/suppressions")
    page.fill("#q", "example.fr")
    page.click("#apply")
    page.wait_for_url("**q=example.fr**")
    assert page.locator("#suppressions tr").count() == 2  # header + Camille's one-click
    assert "one-click" in page.locator("#suppressions").inner_text()
    page.screenshot(path=str(screenshots / "suppressions.png"), full_page=True)

    page.goto(f"{base}/segmail/imports")
    assert page.locator("#imports").get_by_text("rejected rows (CSV)").count() >= 1
    page.screenshot(path=str(screenshots / "imports.png"), full_page=True)

    page.goto(f"{base}/segmail/dag-runs/mailing__newsletter/ui-test")  # the DAG run's "Mailing run" tab
    page.wait_for_url(f"**/segmail/runs/{ids['run_id']}")
    assert page.locator("#total-sent").inner_text() == "19"

    page.goto(f"{base}/")  # the Airflow UI lists the pages in its navigation
    page.get_by_text("Segment mailings").first.wait_for(timeout=30_000)
    page.screenshot(path=str(screenshots / "airflow-nav.png"))
    context.close()
