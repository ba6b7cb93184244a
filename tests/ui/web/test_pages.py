"""The monitoring pages in a real api-server: login required, data shown, and a real browser."""

from __future__ import annotations

import csv
import io
import os
import shutil
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

SCREENSHOTS = Path(__file__).resolve().parents[3] / "var" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


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
    assert (run["sent"], run["failed"], run["skipped"]) == (19, 1, 1)
    failed = httpx.get(f"{base}/segmail/api/runs/{ids['run_id']}/mails?status=failed", headers=auth).json()
    assert failed["total"] == 1 and failed["mails"][0]["smtp_code"] == 550
    exported = httpx.get(f"{base}/segmail/runs/{ids['run_id']}/mails.csv?status=sent", headers=auth)
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert len(rows) == 19 and {r["status"] for r in rows} == {"sent"}
    issues = httpx.get(f"{base}/segmail/imports/{ids['import_run_id']}/issues.csv", headers=auth).text
    assert "'+1" in issues and "Classic Cars" in issues


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


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but Debian's chromium is missing (scripts/ensure-chromium.sh installs it)")
        pytest.skip("chromium not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield browser
        browser.close()


def test_pages_in_a_real_browser(api_server, browser):
    base, token, ids = api_server
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.add_cookies([{"name": "_token", "value": token, "url": base}])
    page = context.new_page()

    page.goto(f"{base}/segmail/")
    assert page.locator("#runs").get_by_text(f"#{ids['run_id']}").count() == 1
    assert page.locator("#chart rect").count() >= 3
    page.screenshot(path=str(SCREENSHOTS / "runs.png"), full_page=True)

    page.locator("#runs a", has_text=f"#{ids['run_id']}").click()
    assert page.locator("#total-sent").inner_text() == "19"
    page.select_option("#status", "failed")
    page.click("#apply")
    page.wait_for_url("**status=failed**")
    assert page.locator("#mails tr").count() == 2  # header + the one rejected mail
    assert "550" in page.locator("#mails").inner_text()
    page.screenshot(path=str(SCREENSHOTS / "run-failed.png"), full_page=True)
    page.select_option("#status", "")
    page.fill("#q", "example.fr")
    page.click("#apply")
    page.wait_for_url("**q=example.fr**")
    texts = page.locator("#mails tr td:nth-child(2)").all_inner_texts()
    assert texts and all(t.endswith("example.fr") for t in texts)

    page.goto(f"{base}/segmail/contacts/{ids['sent_contact']}")
    assert "Region France" in page.locator("#segments").inner_text()
    assert "votre lettre" in page.locator("#activity").inner_text()
    page.screenshot(path=str(SCREENSHOTS / "contact.png"), full_page=True)

    page.goto(f"{base}/segmail/imports")
    assert page.locator("#imports").get_by_text("rejected rows (CSV)").count() >= 1
    page.screenshot(path=str(SCREENSHOTS / "imports.png"), full_page=True)

    page.goto(f"{base}/segmail/dag-runs/mailing__newsletter/ui-test")  # the DAG run's "Mailing run" tab
    page.wait_for_url(f"**/segmail/runs/{ids['run_id']}")
    assert page.locator("#total-sent").inner_text() == "19"

    page.goto(f"{base}/")  # the Airflow UI lists the pages in its navigation
    page.get_by_text("Segment mailings").first.wait_for(timeout=30_000)
    page.screenshot(path=str(SCREENSHOTS / "airflow-nav.png"))
    context.close()
