"""A real Airflow api-server with segmail's plugin, on a segmail database holding demo data."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from segmail.dev.smtpsink import SmtpSink, free_port

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FORMULA_REASON = '=HYPERLINK("https://evil.example","asked by phone")'  # must reach a CSV escaped


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
    }


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
    return ids["CRM-1001"], ids["CRM-4001"]


@pytest.fixture(scope="session")
def api_server(airflow_home, tmp_path_factory):
    """`airflow api-server` in its own process; yields (base URL, token, seeded ids). Stopped at the end."""
    tmp = tmp_path_factory.mktemp("ui")
    url = f"sqlite:///{tmp / 'segmail.db'}"
    ids = seed_demo_data(url, tmp)
    passwords = tmp / "passwords.json"
    passwords.write_text(json.dumps({"admin": "ui-test-password"}))
    port = free_port()
    env = {
        **os.environ,
        "SEGMAIL_DB_URL": url,
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
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
        token = httpx.post(
            f"{base}/auth/token", json={"username": "admin", "password": "ui-test-password"}, timeout=10
        ).json()["access_token"]
        yield base, token, ids
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


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
