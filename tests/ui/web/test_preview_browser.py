"""The preview page in a real api-server: behind Airflow's login like every monitoring page, contact
data only for those who may see it, and in Debian's Chromium with the mail's HTML in a sandboxed
frame. Screenshots go to var/screenshots/preview-*.png."""

from __future__ import annotations

import httpx

PREVIEW = "/segmail/mailings/newsletter/preview"


def preview_paths(ids: dict) -> list[str]:
    return [
        PREVIEW,
        f"{PREVIEW}?language=fr",
        f"{PREVIEW}?contact=CRM-1003",
        f"{PREVIEW}?run={ids['run_id']}",
        f"{PREVIEW}?run={ids['run_id']}&contact=CRM-4001",
        "/segmail/mailings/nope/preview",
    ]


def test_the_preview_needs_airflows_login(api_server):
    base, token, ids = api_server
    for path in preview_paths(ids):
        assert httpx.get(base + path).status_code == 401, path
        assert httpx.get(base + path, cookies={"_token": "forged"}).status_code == 403, path
        answer = httpx.get(base + path, cookies={"_token": token})
        assert answer.status_code == (404 if "/nope/" in path else 200), path


def test_a_viewer_previews_the_sample_contact_only(api_server, viewer_token):
    base, _token, ids = api_server
    viewer = {"Authorization": f"Bearer {viewer_token}"}
    sample = httpx.get(base + PREVIEW, headers=viewer)
    assert sample.status_code == 200 and "Alex Sample" in sample.text and 'id="contact"' not in sample.text
    denied = httpx.get(f"{base}{PREVIEW}?contact=CRM-1003", headers=viewer)
    assert denied.status_code == 403 and "Schmidt" not in denied.text
    run = httpx.get(f"{base}{PREVIEW}?run={ids['run_id']}", headers=viewer)  # the approval's link
    assert run.status_code == 200 and "Alex Sample" in run.text and "which you may not see" in run.text
    assert "@example.at" not in run.text and "@example.fr" not in run.text


def test_a_runs_mail_carries_the_runs_identity(api_server):
    base, token, ids = api_server
    page = httpx.get(f"{base}{PREVIEW}?run={ids['run_id']}&contact=CRM-4001", cookies={"_token": token}).text
    assert f"&lt;segmail.{ids['run_id']}.{ids['sent_contact']}@autohaus-demo.example&gt;" in page
    assert "votre lettre" in page and "camille" in page.lower()


def open_context(browser, base: str, token: str):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.add_cookies([{"name": "_token", "value": token, "url": base}])
    return context


def frame_body(page) -> str:
    return page.frame_locator("#html-part").locator("body").inner_text()


def test_previewing_a_contact_in_a_real_browser(api_server, browser, screenshots):
    base, token, ids = api_server
    context = open_context(browser, base, token)
    page = context.new_page()
    page.goto(f"{base}/segmail/")
    page.locator("#previews a", has_text="Monthly newsletter").click()
    page.wait_for_url(f"**{PREVIEW}")
    assert "Alex" in frame_body(page)
    page.screenshot(path=str(screenshots / "preview-sample.png"), full_page=True)

    page.fill("#contact", "Sophie.Wagner@example.at")
    page.click("#show")
    page.wait_for_url("**contact=Sophie.Wagner**")
    assert "Guten Tag Sophie Wagner" in frame_body(page)  # de-AT gets de, as sending chooses
    assert page.locator("#shown-language").inner_text() == "de"
    page.screenshot(path=str(screenshots / "preview-contact-de.png"), full_page=True)

    page.locator("#languages a", has_text="en").click()
    page.wait_for_url("**language=en**")
    frame = page.locator("#html-part")
    assert frame.get_attribute("sandbox") == ""
    assert "Hello Sophie Wagner" in frame_body(page)
    assert "Sophie, your newsletter" in page.locator("#headers").inner_text()
    assert "preisliste-fruehjahr.pdf" in page.locator("#attachments").inner_text()
    page.screenshot(path=str(screenshots / "preview-contact-en.png"), full_page=True)
    context.close()


def test_the_frame_cannot_reach_the_page(api_server, browser):
    """The sandbox holds: the frame's document has an opaque origin, so neither side reaches the other."""
    base, token, _ids = api_server
    context = open_context(browser, base, token)
    page = context.new_page()
    page.goto(base + PREVIEW)
    page.frame_locator("#html-part").locator("body").wait_for()
    reach = "() => { try { return !!document.getElementById('html-part').contentDocument; } catch (e) { return false; } }"
    assert page.evaluate(reach) is False
    (frame,) = [f for f in page.frames if f != page.main_frame]
    assert frame.evaluate("() => window.origin") == "null"
    parent = "() => { try { return window.parent.document.title; } catch (e) { return 'blocked'; } }"
    assert frame.evaluate(parent) == "blocked"
    context.close()


def test_a_runs_mail_from_its_run_page(api_server, browser, screenshots):
    base, token, ids = api_server
    context = open_context(browser, base, token)
    page = context.new_page()
    page.goto(f"{base}/segmail/runs/{ids['run_id']}?q=CRM-4001")
    page.locator("#mails a.preview").first.click()
    page.wait_for_url("**/preview?run=**")
    assert "Camille" in frame_body(page)
    assert f"<segmail.{ids['run_id']}.{ids['sent_contact']}@" in page.locator("#headers").inner_text()
    assert "sent" in page.locator("#delivery").inner_text()
    page.screenshot(path=str(screenshots / "preview-run-mail.png"), full_page=True)
    context.close()


def test_an_sms_mailings_preview_in_a_real_browser(api_server, browser, screenshots):
    base, token, _ids = api_server
    context = open_context(browser, base, token)
    page = context.new_page()
    page.goto(f"{base}/segmail/mailings/sms_service_reminder/preview?contact=CRM-1001&language=de")
    assert page.locator("#text-part").inner_text().startswith("Hallo Lukas")
    assert "GSM-7" in page.locator("#sms-length").inner_text()
    assert page.locator("iframe").count() == 0
    page.screenshot(path=str(screenshots / "preview-sms.png"), full_page=True)
    context.close()
