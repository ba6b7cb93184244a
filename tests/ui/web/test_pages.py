"""The monitoring pages in a real api-server: login and access rules, data shown, downloads."""

from __future__ import annotations

import csv
import io
import re
from urllib.parse import quote

import httpx
import pytest

BOM = "\ufeff"


def run_pages(ids: dict) -> list[str]:
    """What a viewer may open: runs and their totals, imports (no person named)."""
    return [
        "/segmail/",
        "/segmail/api/runs",
        f"/segmail/runs/{ids['run_id']}",
        "/segmail/imports",
        "/segmail/mailings/newsletter/preview",  # the sample contact
        f"/segmail/mailings/newsletter/preview?run={ids['run_id']}",  # a viewer: the sample, and why
    ]


def contact_pages(ids: dict) -> list[str]:
    """Personal data: names, addresses, the mails of a run, every download."""
    return [
        f"/segmail/api/runs/{ids['run_id']}/mails",
        f"/segmail/runs/{ids['run_id']}/mails.csv",
        f"/segmail/contacts/{ids['sent_contact']}",
        "/segmail/contacts?q=gruber",
        f"/segmail/imports/{ids['import_run_id']}/issues.csv",
        f"/segmail/imports/{ids['inbox_import_id']}/rejected.csv",
        "/segmail/suppressions",
        "/segmail/suppressions?q=phone&page=1",
        "/segmail/suppressions.csv",
        "/segmail/mailings/newsletter/preview?contact=lukas.gruber%40example.at",
        f"/segmail/mailings/newsletter/preview?run={ids['run_id']}&contact=lukas.gruber%40example.at",
    ]


def test_pages_and_data_endpoints_answer_only_to_logged_in_users(api_server):
    base, token, ids = api_server
    for path in run_pages(ids) + contact_pages(ids):
        assert httpx.get(base + path).status_code == 401, path
        assert httpx.get(base + path, headers={"Authorization": "Bearer not-a-jwt"}).status_code == 403, path
        assert httpx.get(base + path, cookies={"_token": "forged"}).status_code == 403, path
        assert httpx.get(base + path, headers={"Authorization": f"Bearer {token}"}).status_code == 200, path
        assert httpx.get(base + path, cookies={"_token": token}).status_code == 200, path


def test_a_viewer_sees_run_totals_but_no_contact_data(api_server, viewer_token):
    base, _token, ids = api_server
    viewer = {"Authorization": f"Bearer {viewer_token}"}
    for path in run_pages(ids):
        assert httpx.get(base + path, headers=viewer).status_code == 200, path
    for path in contact_pages(ids):
        denied = httpx.get(base + path, headers=viewer)
        assert denied.status_code == 403, path
        assert "lukas.gruber" not in denied.text and "Gruber" not in denied.text, path
    assert "contacts_import" in httpx.get(f"{base}/segmail/contacts", headers=viewer).text  # says why

    run = httpx.get(f"{base}/segmail/runs/{ids['run_id']}", headers=viewer).text
    assert '<b id="total-sent">19</b>' in run and 'id="no-contacts"' in run
    assert "@example" not in run and 'id="mails"' not in run
    assert 'href="/segmail/contacts"' not in run  # no tab that would only say "not allowed"
    runs = httpx.get(f"{base}/segmail/", headers=viewer).text
    assert "@example" not in runs and "Monthly newsletter" in runs


def test_no_openapi_schema_or_docs_for_anyone(api_server):
    base, token, _ids = api_server
    for path in ("/segmail/openapi.json", "/segmail/docs", "/segmail/redoc", "/segmail/docs/oauth2-redirect"):
        assert httpx.get(base + path).status_code in (401, 404), path
        assert httpx.get(base + path, cookies={"_token": token}).status_code == 404, path


def test_data_endpoints_show_the_run_and_exports(api_server):
    base, token, ids = api_server
    auth = {"Authorization": f"Bearer {token}"}
    (run,) = [
        r for r in httpx.get(f"{base}/segmail/api/runs", headers=auth).json() if r["run"] == ids["run_id"]
    ]
    assert (run["sent"], run["failed"], run["skipped"], run["unsubscribed"]) == (19, 1, 1, 1)
    assert run["nothing_sent"] is None
    failed = httpx.get(f"{base}/segmail/api/runs/{ids['run_id']}/mails?status=failed", headers=auth).json()
    assert failed["total"] == 1 and failed["mails"][0]["smtp_code"] == 550
    exported = httpx.get(f"{base}/segmail/runs/{ids['run_id']}/mails.csv?status=sent", headers=auth)
    rows = list(csv.DictReader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert len(rows) == 19 and {r["status"] for r in rows} == {"sent"}
    unsubscribed = [r["email"] for r in rows if r["unsubscribed_at"]]
    assert unsubscribed == ["camille.dubois@example.fr"]
    issues = httpx.get(f"{base}/segmail/imports/{ids['import_run_id']}/issues.csv", headers=auth).text
    assert "'+1" in issues and "Classic Cars" in issues


def test_csv_downloads_open_in_excel_with_accents(api_server):
    """A UTF-8 BOM: without it Excel reads the bytes as Windows-1252 and shows "LucÃ­a GarcÃ­a"."""
    base, token, ids = api_server
    auth = {"Authorization": f"Bearer {token}"}
    for path in (
        f"/segmail/runs/{ids['run_id']}/mails.csv",
        "/segmail/suppressions.csv",
        f"/segmail/imports/{ids['import_run_id']}/issues.csv",
        f"/segmail/imports/{ids['inbox_import_id']}/rejected.csv",
    ):
        body = httpx.get(base + path, headers=auth).content
        assert body.startswith(BOM.encode()), path
        assert body.decode("utf-8").count(BOM) == 1, path
    mails = httpx.get(f"{base}/segmail/runs/{ids['run_id']}/mails.csv?q=garcia", headers=auth)
    (lucia,) = csv.DictReader(io.StringIO(mails.content.decode("utf-8-sig")))
    assert f"{lucia['first_name']} {lucia['last_name']}" == "Lucía García"


def test_unsubscribes_and_suppressions_are_shown(api_server):
    base, token, ids = api_server
    auth = {"Authorization": f"Bearer {token}"}
    runs = httpx.get(f"{base}/segmail/", headers=auth).text
    row = runs[runs.index(f'<tr id="run-{ids["run_id"]}">') :].split("</tr>")[0]
    assert '<td class="num unsubscribed">1</td>' in row
    run = httpx.get(f"{base}/segmail/runs/{ids['run_id']}?q=camille", headers=auth).text
    assert '<b id="total-unsubscribed">1</b>' in run
    assert re.search(r'<td class="unsubscribed"><span class="badge outline"><time datetime="20', run)

    contact = httpx.get(f"{base}/segmail/contacts/{ids['sent_contact']}", headers=auth).text
    opt_out = contact[contact.index('<dd id="opt-out">') :].split("</dd>")[0]
    assert "source one-click" in opt_out and f"run #{ids['run_id']}</a>" in opt_out
    assert "<td>unsubscribe</td>" in contact and "unsubscribed (one-click)" in contact
    bounced = httpx.get(f"{base}/segmail/contacts/{ids['failed_contact']}", headers=auth).text
    assert '<dd id="suppression">' in bounced and "hard bounce: 550 5.1.1" in bounced

    page = httpx.get(f"{base}/segmail/suppressions", headers=auth).text
    # Camille (one-click), Lukas (550 at send time), the manual entry, and the ARF complaint's address.
    assert "4 address(es); page 1 of 1" in page and page.count(">complaint<") == 1
    for address in ("camille.dubois@example.fr", "lukas.gruber@example.at", "no.more@example.org"):
        assert f">{address}</a>" in page
    found = httpx.get(f"{base}/segmail/suppressions?q=PHONE", headers=auth).text
    assert "1 address(es) matching" in found and "no.more@example.org" in found
    exported = httpx.get(f"{base}/segmail/suppressions.csv?q=phone", headers=auth)
    assert exported.headers["content-disposition"] == 'attachment; filename="suppressions.csv"'
    (row,) = csv.DictReader(io.StringIO(exported.content.decode("utf-8-sig")))
    assert row["address"] == "no.more@example.org" and row["source"] == "manual"
    assert row["reason"] == '\'=HYPERLINK("https://evil.example","asked by phone")'  # no formula in Excel


def test_a_run_page_names_the_mailing_its_status_and_its_dag_run(api_server):
    base, token, ids = api_server
    page = httpx.get(f"{base}/segmail/runs/{ids['run_id']}", cookies={"_token": token}).text
    title = page[page.index('<h1 id="title">') :].split("</h1>")[0]
    assert "Monthly newsletter" in title and f"run #{ids['run_id']}" in title
    assert '<span class="badge success">succeeded</span>' in title
    assert '<a id="dag-run" href="/dags/mailing__newsletter/runs/ui-test" target="_top">' in page
    assert 'id="nothing-sent"' not in page
    skipped = page[page.index('<table id="skip-reasons">') :].split("</table>")[0]
    assert "<td>opted out</td>" in skipped  # Hannah Weber opted out before the run


def test_runs_that_sent_nothing_say_so(api_server):
    """A green DAG run that sent nothing — a dry run, a scheduled run skipped as too late — is marked
    "nothing sent" with the reason, on the list, on its page and through its DAG run's tab."""
    base, token, ids = api_server
    auth = {"Authorization": f"Bearer {token}"}
    dry_run, too_late_run = ids["dry_dag_run"], ids["too_late_dag_run"]
    runs = {r["dag_run_id"]: r for r in httpx.get(f"{base}/segmail/api/runs", headers=auth).json()}
    assert runs[dry_run]["nothing_sent"] == "Dry run: every mail was rendered, none was sent."
    assert runs[dry_run]["status"] == "succeeded" and runs[dry_run]["sent"] == 0
    too_late = runs[too_late_run]
    assert too_late["status"] == "skipped" and too_late["sent"] == too_late["skipped"] == 0
    assert too_late["nothing_sent"].startswith(
        "Skipped as too late: scheduled for 2026-01-05 08:00 UTC, starting"
    )
    assert "max_lateness_hours=6" in too_late["nothing_sent"]
    assert not re.search(r"\d\.\d{6}", too_late["nothing_sent"])  # "… 2:00:01 later", no microseconds

    listing = httpx.get(f"{base}/segmail/", headers=auth).text
    for run_id in (ids["dry_run_id"], too_late["run"]):
        row = listing[listing.index(f'<tr id="run-{run_id}">') :].split("</tr>")[0]
        assert '<span class="badge skipped nothing-sent"' in row, run_id
    row = listing[listing.index(f'<tr id="run-{ids["run_id"]}">') :].split("</tr>")[0]
    assert "nothing-sent" not in row

    dry = httpx.get(f"{base}/segmail/runs/{ids['dry_run_id']}", headers=auth).text
    assert '<span class="badge outline">dry run</span>' in dry and 'id="nothing-sent"' in dry
    assert "dry run: rendered, not sent" in dry  # the reason on each of its mails
    tab = httpx.get(
        f"{base}/segmail/dag-runs/mailing__newsletter/{quote(too_late_run, safe='')}", headers=auth
    )
    assert tab.status_code == 303 and tab.headers["location"] == f"/segmail/runs/{too_late['run']}"
    skipped = httpx.get(base + tab.headers["location"], headers=auth).text
    assert '<span class="badge skipped">skipped</span>' in skipped
    assert "<b>Nothing sent.</b> Skipped as too late: scheduled for 2026-01-05 08:00 UTC" in skipped


def test_times_are_utc_to_the_second_for_the_browser_to_localise(api_server):
    base, token, ids = api_server
    auth = {"Authorization": f"Bearer {token}"}
    for path in (
        "/segmail/",
        f"/segmail/runs/{ids['run_id']}",
        f"/segmail/contacts/{ids['sent_contact']}",
        "/segmail/imports",
        "/segmail/suppressions",
    ):
        page = httpx.get(base + path, headers=auth).text
        tags = re.findall(r'<time datetime="([^"]+)">([^<]+)</time>', page)
        assert tags, path
        for iso, shown in tags:
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", iso), (path, iso)
            assert shown == iso.replace("T", " ").replace("Z", " UTC"), (path, shown)  # the no-JS fallback
        assert not re.search(r"\d\d:\d\d:\d\d\.\d", page), path  # no microseconds anywhere


def test_a_contact_page_shows_the_customer_and_every_mail(api_server):
    base, token, ids = api_server
    page = httpx.get(f"{base}/segmail/contacts/{ids['failed_contact']}", cookies={"_token": token}).text
    assert '<dd id="organization">Gruber Transporte GmbH</dd>' in page
    assert '<dd id="account-number">10001</dd>' in page
    salesperson = page[page.index('<dd id="salesperson">') :].split("</dd>")[0]
    assert "MB" in salesperson and "<span" in salesperson  # the salesperson's name with the code
    mails = page[page.index('<table id="deliveries">') :].split("</table>")[0]
    assert mails.count("<tr>") == 3  # header, the real run (failed), the dry run (skipped)
    assert '<span class="badge failed">failed</span>' in mails and "550" in mails
    assert '<span class="badge skipped">skipped</span>' in mails and "suppressed" in mails

    opted_out = httpx.get(f"{base}/segmail/contacts?q=weber", cookies={"_token": token}).text
    contact_id = re.search(r'href="/segmail/contacts/(\d+)">CRM-1006', opted_out).group(1)
    hannah = httpx.get(f"{base}/segmail/contacts/{contact_id}", cookies={"_token": token}).text
    mails = hannah[hannah.index('<table id="deliveries">') :].split("</table>")[0]
    assert mails.count("opted out") == 2  # skipped with the reason in both runs
    assert "source" in hannah[hannah.index('<dd id="opt-out">') :].split("</dd>")[0]


def test_rejected_rows_come_back_as_sent_with_the_reason_and_import_again(api_server, tmp_path):
    base, token, ids = api_server
    auth = {"Authorization": f"Bearer {token}"}
    answer = httpx.get(f"{base}/segmail/imports/{ids['inbox_import_id']}/rejected.csv", headers=auth)
    assert answer.status_code == 200
    assert answer.headers["content-disposition"] == (
        "attachment; filename=\"Kunden M_rz-rejected-rows.csv\"; filename*=UTF-8''Kunden%20M%C3%A4rz-rejected-rows.csv"
    )
    text = answer.content.decode("utf-8-sig")
    header, *rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=";"))  # the file's delimiter
    assert header == [
        "Ländervorwahl",
        "Vorname",
        "Nachname",
        "E-Mail",
        "Handynummer",
        "Externe ID",
        "Segmente",
        "Reason",
    ]
    assert [r[:7] for r in rows] == [
        ["AT", "Jürgen", "Groß", "juergen.gross(at)example.at", "", "CRM-9001", "Newsletter"],
        ["DE", "Zeile mit\r\nUmbruch", "Muster", "", "", "CRM-9003", "Newsletter"],
        ["'=1+2", "Eve", "Formel", "eve@example.de", "", "CRM-9004", "Newsletter"],  # no formula in Excel
    ]
    assert rows[0][7].startswith("Email: ") and "@-sign" in rows[0][7]
    assert rows[2][7].startswith("Country Code: ") and "ISO 3166" in rows[2][7]

    # Fix the cells the reasons name and import the downloaded file as it is: every row lands.
    fixed = text.replace("juergen.gross(at)example.at", "juergen.gross@example.at")
    fixed = fixed.replace("Muster;;", "Muster;zeile@example.de;").replace("'=1+2", "DE")
    path = tmp_path / "fixed.csv"
    path.write_text(fixed, encoding="utf-8-sig", newline="")
    assert import_into_fresh_database(path, tmp_path) == (3, 3, 0)

    imports = httpx.get(f"{base}/segmail/imports", headers=auth).text
    row = imports[imports.index(f'<tr id="import-{ids["inbox_import_id"]}">') :].split("</tr>")[0]
    assert ids["inbox_file"] in row and f"/segmail/imports/{ids['inbox_import_id']}/rejected.csv" in row


def import_into_fresh_database(path, tmp_path) -> tuple[int, int, int]:
    from segmail.imports.pipeline import import_file
    from segmail.store.db import make_engine
    from segmail.store.migrate import upgrade

    engine = make_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    upgrade(engine)
    result = import_file(path, engine=engine)
    engine.dispose()
    return result.rows, result.created, result.rejected


def test_rejected_rows_of_an_import_without_its_file_point_to_the_issue_list(api_server):
    """The sample was imported by a call, not through the inbox: no copy of its file was kept."""
    base, token, ids = api_server
    answer = httpx.get(
        f"{base}/segmail/imports/{ids['import_run_id']}/rejected.csv", cookies={"_token": token}
    )
    assert answer.status_code == 404 and "kept no copy of its file" in answer.text
    assert f'href="/segmail/imports/{ids["import_run_id"]}/issues.csv"' in answer.text
    imports = httpx.get(f"{base}/segmail/imports", cookies={"_token": token}).text
    row = imports[imports.index(f'<tr id="import-{ids["import_run_id"]}">') :].split("</tr>")[0]
    assert "rejected.csv" not in row and "issues.csv" in row  # the page offers only what it has


@pytest.mark.parametrize(
    ("path", "message"),
    [
        pytest.param("/segmail/runs/424242", "There is no mailing run #424242.", id="run"),
        pytest.param("/segmail/contacts/424242", "There is no contact #424242.", id="contact"),
        pytest.param("/segmail/imports/424242/rejected.csv", "There is no import #424242.", id="import"),
    ],
)
def test_unknown_ids_get_a_404_page(api_server, path, message):
    base, token, _ids = api_server
    answer = httpx.get(base + path, cookies={"_token": token})
    assert answer.status_code == 404 and answer.headers["content-type"].startswith("text/html")
    assert f'<p id="error" class="note">{message}</p>' in answer.text


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


@pytest.mark.parametrize(
    ("path", "status"),
    [
        pytest.param("/segmail/runs/100000000000000000000", 404, id="run-id-1e20"),
        pytest.param("/segmail/contacts/100000000000000000000", 404, id="contact-id-1e20"),
        pytest.param("/segmail/api/runs/100000000000000000000/mails", 404, id="api-run-id-1e20"),
        pytest.param("/segmail/runs/1?page=100000000000000000000", 422, id="page-1e20"),
        pytest.param("/segmail/suppressions?page=-1", 422, id="page-negative"),
        pytest.param("/segmail/api/runs?limit=-1", 422, id="limit-negative"),
        pytest.param("/segmail/contacts?q=%00", 422, id="nul-search"),
        pytest.param("/segmail/dag-runs/mailing__newsletter/ui%00test", 404, id="nul-dag-run"),
        pytest.param("/segmail/suppressions?q=%25", 200, id="percent-search"),
    ],
)
def test_absurd_values_through_the_api_server(api_server, path, status):
    """The same checks as test_query_values.py (SQLite and PostgreSQL), through Airflow's api-server."""
    base, token, _ids = api_server
    answer = httpx.get(base + path, cookies={"_token": token})
    assert answer.status_code == status
    if status == 200:
        assert "0 address(es) matching; page 1 of 1" in answer.text  # `%` taken literally


def test_the_runs_page_charts_bounce_and_complaint_rates_against_the_limits(api_server):
    base, token, _ = api_server
    page = httpx.get(f"{base}/segmail/", headers={"Authorization": f"Bearer {token}"})
    assert page.status_code == 200
    chart = page.text.split('id="rates-chart"', 1)[1].split("</svg>", 1)[0]
    assert (
        "bounces / accepted" in chart and "bounce limit 5.0 %" in chart and "complaint limit 0.3 %" in chart
    )
    bounce_titles = [t for t in chart.split("<title>")[1:] if "bounces" in t and "0 hard, 1 soft" in t]
    assert len(bounce_titles) == 1 and "complaints" not in bounce_titles[0]
    assert any("complaints" in t and "(1 of" in t for t in chart.split("<title>")[1:])
