"""A real Airflow api-server with segmail's plugin, on a segmail database holding demo data."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from segmail.dev.smtpsink import SmtpSink, free_port

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FORMULA_REASON = '=HYPERLINK("https://evil.example","asked by phone")'  # must reach a CSV escaped
USERS = {"admin": "admin", "viewer": "viewer"}  # name: role of the simple auth manager
TOO_LATE_RUN = "scheduled__2026-01-05T08:00:00+00:00"  # a scheduled run that started weeks late
DRY_RUN = "manual__dry-run"
# An Excel-saved German file (Windows-1252, semicolons) with three bad rows: a bad e-mail (row 2),
# a quoted line break and no address (row 4, spanning two lines), a formula as country code (row 5).
INBOX_FILE = "Kunden März.csv"
INBOX_ROWS = (
    "Ländervorwahl;Vorname;Nachname;E-Mail;Handynummer;Externe ID;Segmente\r\n"
    "AT;Jürgen;Groß;juergen.gross(at)example.at;;CRM-9001;Newsletter\r\n"
    "AT;Max;Gut;max.gut@example.at;;CRM-9002;Newsletter\r\n"
    'DE;"Zeile mit\r\nUmbruch";Muster;;;CRM-9003;Newsletter\r\n'
    "=1+2;Eve;Formel;eve@example.de;;CRM-9004;Newsletter\r\n"
    "AT;Ok;Zwei;ok.zwei@example.at;;CRM-9005;Newsletter\r\n"
)


def seed_demo_data(url: str, tmp: Path) -> dict:
    """Sample import, then a newsletter run with one permanent rejection; returns ids for the tests."""
    from segmail.dev.local import seed_sample_setup
    from segmail.imports.pipeline import import_file
    from segmail.mailings import audience, deliveries, send, summary
    from segmail.mailings.definition import get_mailing
    from segmail.mailings.transport import SmtpHookTransport
    from segmail.store.db import make_engine
    from segmail.store.migrate import upgrade

    engine = make_engine(url)
    upgrade(engine)
    os.environ["SEGMAIL_DB_URL"] = url
    from segmail.store.db import default_engine

    default_engine.cache_clear()
    try:
        seed_sample_setup()
        result = import_file(ROOT / "include" / "sample" / "contacts.csv", engine=engine)
        mailing = get_mailing("newsletter")
        with SmtpSink() as sink:
            os.environ["AIRFLOW_CONN_SMTP_DEFAULT"] = sink.connection_uri
            sink.handler.refuse["lukas.gruber@example.at"] = "550 5.1.1 Mailbox does not exist"
            run_id = audience.freeze_audience(mailing, dag_run_id="ui-test", engine=engine)
            for batch in deliveries.plan_batches(run_id, batch_size=500, engine=engine):
                send.send_batch(
                    batch["batch_id"],
                    mailing=mailing,
                    engine=engine,
                    transport=SmtpHookTransport("smtp_default"),
                )
            summary.summarize_run(run_id, mailing=mailing, engine=engine)  # 1 of 20 failed: within 5 %
            dry_run_id = seed_dry_run(engine)
        seed_too_late_run()
        inbox_import_id = seed_inbox_import(tmp)
    finally:
        os.environ.pop("SEGMAIL_DB_URL", None)
        os.environ.pop("AIRFLOW_CONN_SMTP_DEFAULT", None)
        default_engine.cache_clear()
    gruber, camille = seed_feedback(engine, run_id)
    engine.dispose()
    return {
        "run_id": run_id,
        "import_run_id": result.import_run_id,
        "failed_contact": gruber,
        "sent_contact": camille,
        "dry_run_id": dry_run_id,
        "dry_dag_run": DRY_RUN,
        "too_late_dag_run": TOO_LATE_RUN,
        "inbox_import_id": inbox_import_id,
        "inbox_file": INBOX_FILE,
    }


def seed_dry_run(engine) -> int:
    """A manual dry run of the newsletter: every mail rendered, none sent; the DAG run is green."""
    from segmail.mailings import audience, deliveries, send, summary
    from segmail.mailings.definition import get_mailing
    from segmail.mailings.transport import SmtpHookTransport

    mailing = get_mailing("newsletter")
    run_id = audience.freeze_audience(mailing, dag_run_id=DRY_RUN, dry_run=True, engine=engine)
    for batch in deliveries.plan_batches(run_id, batch_size=500, engine=engine):
        transport = SmtpHookTransport("smtp_default")
        send.send_batch(batch["batch_id"], mailing=mailing, engine=engine, transport=transport)
    summary.summarize_run(run_id, mailing=mailing, engine=engine)
    return run_id


def seed_too_late_run() -> None:
    """The freeze_audience task of a scheduled run that starts weeks after its time: skipped."""
    from airflow.sdk.exceptions import AirflowSkipException
    from segmail.orchestration import tasks

    params = {"dry_run": False, "languages": ["de", "en", "fr"], "max_recipients": 0}
    due = datetime(2026, 1, 5, 8, tzinfo=UTC)
    dag_run = SimpleNamespace(run_type="scheduled", run_after=due, logical_date=due)
    try:
        tasks.freeze_audience("newsletter", params=params, run_id=TOO_LATE_RUN, dag_run=dag_run)
    except AirflowSkipException:
        return
    raise AssertionError("a run weeks late was not skipped")


def seed_inbox_import(tmp: Path) -> int:
    """INBOX_FILE through the inbox, as the nightly DAG imports it: archived with its report."""
    from segmail.imports.inbox import import_inbox_file

    inbox = tmp / "inbox"
    inbox.mkdir()
    (inbox / INBOX_FILE).write_bytes(INBOX_ROWS.encode("cp1252"))
    result = import_inbox_file(str(inbox / INBOX_FILE))
    assert (result["created"], result["rejected"]) == (2, 3), result
    return result["import_run_id"]


def seed_feedback(engine, run_id: int) -> tuple[int, int]:
    """Camille (CRM-4001) unsubscribes with one click from her mail of the run, and an address is
    suppressed by hand with a reason a spreadsheet would run as a formula; Lukas (CRM-1001) was
    already suppressed by his server's 550 "does not exist". Returns (Lukas's id, Camille's id)."""
    from segmail.contacts.suppressions import add_suppression
    from segmail.feedback.unsubscribe import unsubscribe
    from segmail.store.models import OptOutSource
    from sqlalchemy import text

    with engine.connect() as conn:
        ids = dict(
            conn.execute(
                text(
                    "SELECT c.external_id, c.id FROM segmail_contacts c"
                    " WHERE c.external_id IN ('CRM-1001', 'CRM-4001')"
                )
            ).all()
        )
        delivery = conn.execute(
            text("SELECT id FROM segmail_deliveries WHERE mailing_run_id = :r AND contact_id = :c"),
            {"r": run_id, "c": ids["CRM-4001"]},
        ).scalar_one()
    assert unsubscribe(delivery, source=OptOutSource.ONE_CLICK, engine=engine)
    add_suppression(address="no.more@example.org", reason=FORMULA_REASON, engine=engine)
    seed_bounce_and_complaint(engine, run_id)
    return ids["CRM-1001"], ids["CRM-4001"]


def seed_bounce_and_complaint(engine, run_id: int) -> None:
    """One sent mail of the run soft-bounces (Postfix DSN, mailbox full: it stays `sent`), another one
    is reported as spam (ARF), both read back through the same processing as the mail_feedback DAG."""
    from bounce_support import report_for
    from segmail.feedback.process import FeedbackContext, process_message
    from sqlalchemy import text

    with engine.connect() as conn:
        sent = [
            dict(row._mapping)
            for row in conn.execute(
                text(
                    "SELECT id, email, message_id FROM segmail_deliveries WHERE mailing_run_id = :r"
                    " AND status = 'sent' AND unsubscribed_at IS NULL ORDER BY id LIMIT 2"
                ),
                {"r": run_id},
            )
        ]
    context = FeedbackContext.from_settings()
    for delivery, template in zip(sent, ("postfix_mailbox_full.eml", "arf_abuse.eml"), strict=True):
        process_message(report_for(delivery, template), context=context, engine=engine)


@pytest.fixture(scope="session")
def api_server(airflow_home, tmp_path_factory):
    """`airflow api-server` in its own process; yields (base URL, token, seeded ids). Stopped at the end."""
    tmp = tmp_path_factory.mktemp("ui")
    url = f"sqlite:///{tmp / 'segmail.db'}"
    ids = seed_demo_data(url, tmp)
    passwords = tmp / "passwords.json"
    passwords.write_text(json.dumps({name: f"ui-test-{name}" for name in USERS}))
    port = free_port()
    env = {
        **os.environ,
        "SEGMAIL_DB_URL": url,
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{n}:{r}" for n, r in USERS.items()),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__API__PORT": str(port),
    }
    log = (tmp / "api-server.log").open("w")
    airflow = Path(sys.executable).with_name("airflow")
    process = subprocess.Popen(
        [str(airflow), "api-server", "--port", str(port), "--host", "127.0.0.1"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{base}/api/v2/monitor/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"api-server did not start; see {tmp / 'api-server.log'}:\n"
                    + (tmp / "api-server.log").read_text()[-3000:]
                )
            time.sleep(0.5)
        yield base, login(base, "admin"), ids
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def login(base: str, user: str) -> str:
    """A JWT of one of USERS, as Airflow's UI gets it."""
    answer = httpx.post(
        f"{base}/auth/token", json={"username": user, "password": f"ui-test-{user}"}, timeout=10
    )
    return answer.json()["access_token"]


@pytest.fixture(scope="session")
def viewer_token(api_server) -> str:
    """A user with Airflow's viewer role: may see runs, not contacts."""
    return login(api_server[0], "viewer")


@pytest.fixture
def monitoring_client(engine):
    """The monitoring app in-process on the test database (SQLite, PostgreSQL), mounted at /segmail as
    in the api-server; the login is an admin user's, the authorization the auth manager's own."""
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from fastapi import FastAPI
    from segmail.web.access import require_login
    from segmail.web.monitoring import create_app

    with warnings.catch_warnings():  # Starlette would like httpx2 one day (Airflow's app imports it too)
        warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
        from airflow.api_fastapi.app import create_auth_manager
        from fastapi.testclient import TestClient

    create_auth_manager()  # the configured (simple) auth manager decides, as in the api-server
    app = create_app()
    app.dependency_overrides[require_login] = lambda: SimpleAuthManagerUser(username="admin", role="admin")
    root = FastAPI()
    root.mount("/segmail", app)
    with TestClient(root, raise_server_exceptions=True) as client:
        yield client


@pytest.fixture(scope="session")
def screenshots() -> Path:
    """Where browser tests save what they saw: var/screenshots/ in the checkout."""
    folder = ROOT / "var" / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium driven by Playwright (no browser download); required under CI=true."""
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
