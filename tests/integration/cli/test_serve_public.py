"""`segmail serve-public` as a real process: it serves the public app, answers a bad token with
400 and stops on SIGTERM; without a signing key it refuses to start with one line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from segmail.dev.smtpsink import free_port

SEGMAIL = Path(sys.executable).with_name("segmail")


def wait_for_health(process: subprocess.Popen, base: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=2).text == "ok":
                return
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"serve-public did not come up:\n{process.communicate()[0]}")
        time.sleep(0.2)


@pytest.fixture
def serve_public(db_url):
    """`segmail serve-public --port P` on the test database; terminated at the end."""
    port = free_port()
    env = {**os.environ, "SEGMAIL_DB_URL": db_url}
    process = subprocess.Popen(
        [str(SEGMAIL), "serve-public", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    wait_for_health(process, base)
    yield base, process
    if process.poll() is None:
        process.terminate()
        process.wait(timeout=20)


def test_serves_the_public_app_until_terminated(serve_public):
    base, process = serve_public
    bad = httpx.get(f"{base}/u/u.1.2.aaaaaaaaaaaaaaaaaaaaaaaaaa")
    assert bad.status_code == 400 and "This unsubscribe link is not valid" in bad.text
    forged = httpx.post(f"{base}/u/not-a-token", data={"List-Unsubscribe": "One-Click"})
    assert forged.status_code == 400
    assert "server" not in bad.headers  # the server's name and version are not announced
    assert httpx.get(f"{base}/docs").status_code == 404
    process.terminate()
    assert process.wait(timeout=20) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal it handled
    output = process.stdout.read()
    assert "Finished server process" in output  # a graceful shutdown, not a kill
    assert f"segmail public app on {base} (recipients reach it as https://unsubscribe." in output
    assert "Traceback" not in output


def test_refuses_to_start_without_a_signing_key(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "AIRFLOW_CONN_SEGMAIL_SIGNING"}
    env["SEGMAIL_DB_URL"] = f"sqlite:///{tmp_path / 'segmail.db'}"
    done = subprocess.run(
        [str(SEGMAIL), "serve-public", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("error: serve-public needs the signing key in the environment")
    assert done.stderr.count("\n") == 1 and done.stdout == ""
