"""`make demo` end to end, and its output free of noise that segmail causes: no deprecation warnings
from segmail's code or setup, no "Skipping masking for a secret" from its connections."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

# Raised inside Airflow's in-process execution API, which dag.test() uses (svcs imports
# fastapi.testclient, and Starlette wants httpx2 there): not a segmail code path.
UPSTREAM_WARNINGS = ("Using `httpx` with `starlette.testclient` is deprecated",)


@pytest.mark.airflow
def test_make_demo_runs_and_says_nothing_about_segmail_it_should_not(tmp_path):
    home = tmp_path / "airflow-home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SEGMAIL_", "AIRFLOW"))}
    env["AIRFLOW_HOME"] = str(home)
    done = subprocess.run(
        [sys.executable, "-m", "segmail.dev.demo"], env=env, capture_output=True, text=True, timeout=600
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert "Skipping masking for a secret" not in output
    assert "GitWildMatchPattern" not in output  # Airflow scanning plugins/ and its .airflowignore
    warnings = [line for line in output.splitlines() if re.search(r"\[warning\s*\]|Warning:", line)]
    unexplained = [line for line in warnings if not any(known in line for known in UPSTREAM_WARNINGS)]
    assert unexplained == []
    assert (home / "segmail" / "sample-seeded").is_file()  # `make airflow` will not seed it again
    assert "More: .venv/bin/segmail status newsletter" in output
    # The SMS broadcast through Kannel (or, without Kannel, one line saying how to get it).
    from segmail.dev.smsgateway import missing

    if missing() is None:
        assert "fakesmsc got, to +436641234567 from Autohaus (GSM-7, 1 part(s)): Hallo Lukas" in output
        assert '"delivered": 3' in output and "opted out of SMS" in output
    else:
        assert "SMS: skipped, Kannel is not installed" in output
