"""The monitoring pages in Debian's Chromium, inside Airflow's UI as users see them: Airflow's look in
light and dark mode, times in the user's time zone, runs that sent nothing, a viewer without contact
data. Screenshots go to var/screenshots/."""

from __future__ import annotations

import re

import pytest


def open_context(browser, base: str, token: str, **options):
    context = browser.new_context(viewport={"width": 1400, "height": 900}, **options)
    context.add_cookies([{"name": "_token", "value": token, "url": base}])
    return context


def test_pages_in_a_real_browser(api_server, browser, screenshots):
    base, token, ids = api_server
    context = open_context(browser, base, token)
    page = context.new_page()

    page.goto(f"{base}/segmail/")
    assert page.locator("#runs").get_by_text(f"#{ids['run_id']}", exact=True).count() == 1
    assert page.locator("#chart rect").count() >= 3
    page.screenshot(path=str(screenshots / "runs.png"), full_page=True)

    page.locator("#runs a", has_text=re.compile(f"^#{ids['run_id']}$")).click()
    assert page.locator("#total-sent").inner_text() == "19"
    page.select_option("#status", "failed")
    page.click("#apply")
    page.wait_for_url("**status=failed**")
    assert page.locator("#mails tbody tr").count() == 1  # the one rejected mail
    assert "550" in page.locator("#mails").inner_text()
    page.screenshot(path=str(screenshots / "run-failed.png"), full_page=True)
    page.select_option("#status", "")
    page.fill("#q", "example.fr")
    page.click("#apply")
    page.wait_for_url("**q=example.fr**")
    texts = page.locator("#mails tbody tr td:nth-child(2)").all_inner_texts()
    assert texts and all(t.endswith("example.fr") for t in texts)

    page.goto(f"{base}/segmail/contacts/{ids['sent_contact']}")
    assert "Region France" in page.locator("#segments").inner_text()
    assert page.locator("#organization").inner_text() == "Dubois Automobiles SARL"
    assert "votre lettre" in page.locator("#activity").inner_text()
    page.screenshot(path=str(screenshots / "contact.png"), full_page=True)

    page.goto(f"{base}/segmail/suppressions")
    page.fill("#q", "example.fr")
    page.click("#apply")
    page.wait_for_url("**q=example.fr**")
    assert page.locator("#suppressions tbody tr").count() == 1  # Camille's one-click
    assert "one-click" in page.locator("#suppressions").inner_text()
    page.screenshot(path=str(screenshots / "suppressions.png"), full_page=True)

    page.goto(f"{base}/segmail/imports")
    assert page.locator("#imports").get_by_text("rejected rows (CSV)").count() == 1  # the inbox import
    with page.expect_download() as download:
        page.locator(f"#import-{ids['inbox_import_id']} a.rejected").click()
    assert download.value.suggested_filename == "Kunden März-rejected-rows.csv"
    page.screenshot(path=str(screenshots / "imports.png"), full_page=True)

    page.goto(f"{base}/segmail/dag-runs/mailing__newsletter/ui-test")  # the DAG run's "Mailing run" tab
    page.wait_for_url(f"**/segmail/runs/{ids['run_id']}")
    assert page.locator("#total-sent").inner_text() == "19"
    context.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_pages_sit_in_airflows_ui_with_its_look(api_server, browser, screenshots, scheme):
    """Opened from the sidebar ("Mailings", not cut), the page has no bar of its own, Airflow's font
    and colours, and follows the colour mode Airflow shows — also when the user switches it."""
    base, token, _ids = api_server
    context = open_context(browser, base, token, color_scheme=scheme)
    page = context.new_page()
    page.goto(f"{base}/")
    entry = page.get_by_role("link", name="Mailings", exact=True)
    entry.wait_for(timeout=30_000)
    label = entry.get_by_text("Mailings", exact=True)
    assert label.evaluate("e => e.scrollWidth <= e.clientWidth"), "the sidebar label is cut"
    entry.click()
    page.wait_for_url("**/plugin/mailings**")
    frame = page.frame_locator("iframe")
    frame.locator("#runs").wait_for()
    airflow = page.evaluate(
        "() => ({font: getComputedStyle(document.body).fontFamily, theme: document.documentElement.className})"
    )
    ours = frame.locator("body").evaluate(
        "b => ({font: getComputedStyle(b).fontFamily, bg: getComputedStyle(b).backgroundColor,"
        " theme: document.documentElement.dataset.theme})"
    )
    assert airflow["theme"] == ours["theme"] == scheme
    assert ours["font"] == airflow["font"]
    assert frame.locator("header").count() == 0  # no blue bar of its own
    assert (ours["bg"] == "rgb(255, 255, 255)") == (scheme == "light")
    page.screenshot(path=str(screenshots / f"airflow-mailings-{scheme}.png"))

    other = "light" if scheme == "dark" else "dark"
    page.evaluate(
        "t => document.documentElement.classList.replace(document.documentElement.className, t)", other
    )
    assert (
        frame.locator("html").evaluate("h => new Promise(r => setTimeout(() => r(h.dataset.theme), 50))")
        == other
    )
    context.close()


def test_times_follow_the_time_zone_chosen_in_airflow(api_server, browser, screenshots):
    base, token, ids = api_server
    context = open_context(browser, base, token, timezone_id="America/Sao_Paulo")
    page = context.new_page()
    page.goto(f"{base}/segmail/runs/{ids['run_id']}")
    shown = page.locator("time").first
    iso = shown.get_attribute("datetime")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", shown.inner_text())  # no microseconds
    browser_zone = page.evaluate(
        "iso => new Date(iso).toLocaleString('sv-SE', {timeZone: 'America/Sao_Paulo'})", iso
    )
    assert shown.inner_text() == browser_zone  # the browser's zone by default
    assert page.locator("#zone").inner_text() == "Times in America/Sao_Paulo"

    page.evaluate("() => localStorage.setItem('timezone', JSON.stringify('Asia/Tokyo'))")  # Airflow's choice
    page.reload()
    tokyo = page.evaluate("iso => new Date(iso).toLocaleString('sv-SE', {timeZone: 'Asia/Tokyo'})", iso)
    assert page.locator("time").first.inner_text() == tokyo
    assert page.locator("#zone").inner_text() == "Times in Asia/Tokyo"
    page.screenshot(path=str(screenshots / "run-times-tokyo.png"), full_page=True)
    context.close()


def test_runs_that_sent_nothing_stand_out(api_server, browser, screenshots):
    base, token, ids = api_server
    context = open_context(browser, base, token)
    page = context.new_page()
    too_late_run = ids["too_late_dag_run"]
    page.goto(f"{base}/segmail/")
    assert page.locator(f"#run-{ids['dry_run_id']} .nothing-sent").is_visible()
    too_late = page.locator("#runs tr", has_text=too_late_run)
    assert "Skipped as too late" in too_late.locator(".reason").inner_text()
    assert page.locator(f"#run-{ids['run_id']} .nothing-sent").count() == 0
    page.screenshot(path=str(screenshots / "runs-nothing-sent.png"), full_page=True)
    too_late.locator("a", has_text=re.compile(r"^#\d+$")).click()
    assert "Nothing sent." in page.locator("#nothing-sent").inner_text()
    assert (
        page.locator("#dag-run").get_attribute("href")
        == f"/dags/mailing__newsletter/runs/{too_late_run.replace(':', '%3A').replace('+', '%2B')}"
    )
    page.screenshot(path=str(screenshots / "run-skipped-too-late.png"), full_page=True)
    context.close()


def test_a_viewer_sees_totals_without_contacts(api_server, viewer_token, browser, screenshots):
    base, _token, ids = api_server
    context = open_context(browser, base, viewer_token)
    page = context.new_page()
    page.goto(f"{base}/segmail/runs/{ids['run_id']}")
    assert page.locator("#total-sent").inner_text() == "19"
    assert page.locator("#mails").count() == 0 and page.locator("#no-contacts").is_visible()
    assert page.locator("nav.tabs a").all_inner_texts() == ["Mailing runs", "Imports"]
    page.screenshot(path=str(screenshots / "run-as-viewer.png"), full_page=True)
    answer = page.goto(f"{base}/segmail/contacts/{ids['sent_contact']}")
    assert answer.status == 403 and "Camille" not in page.content()
    page.screenshot(path=str(screenshots / "contact-denied-to-viewer.png"))
    context.close()
