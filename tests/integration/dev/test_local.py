"""`make airflow` (python -m segmail.dev.local): Ctrl-C stops everything it started within 15 s, it
listens where its banner says (127.0.0.1), seeds the sample once and sizes the executor to the
machine."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest
from segmail.dev import local
from segmail.dev.smtpsink import free_port

STOP_SECONDS = 15
CONFIGURED = (
    "AIRFLOW__API__HOST",
    "AIRFLOW__API__PORT",
    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
    "AIRFLOW__CORE__EXECUTOR",
    "AIRFLOW__CORE__PARALLELISM",
)
START_SECONDS = 400  # airflow standalone migrates and starts four components: slow on two busy cores


def _processes_of(home: Path, sessions: set[int] = frozenset()) -> list[psutil.Process]:
    """Every live process started for this AIRFLOW_HOME, wherever it hangs now: by the environment
    they all inherit, or by session (processes that set their title, e.g. `airflow serve-logs`, no
    longer show their environment)."""
    found = []
    for process in psutil.process_iter():
        try:
            ours = os.getsid(process.pid) in sessions or process.environ().get("AIRFLOW_HOME") == str(home)
            if ours and process.status() != psutil.STATUS_ZOMBIE:
                found.append(process)
        except (psutil.Error, OSError):
            continue
    return found


def _sessions_below(launcher: subprocess.Popen) -> set[int]:
    tree = [psutil.Process(launcher.pid), *psutil.Process(launcher.pid).children(recursive=True)]
    return {os.getsid(p.pid) for p in tree if p.is_running()}


def _wait_for(url: str, launcher: subprocess.Popen, seconds: float) -> int:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and launcher.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=3) as answer:
                return answer.status
        except urllib.error.HTTPError as refused:
            return refused.code
        except OSError:
            time.sleep(1)
    raise AssertionError(f"{url} did not answer (launcher exit code {launcher.poll()})")


@pytest.fixture
def make_airflow(tmp_path):
    """`make airflow` on a temporary AIRFLOW_HOME and free ports, in a process group of its own as a
    terminal would start it; everything left is killed at the end, whatever the test found."""
    home = tmp_path / "airflow-home"
    ports = {name: free_port() for name in ("SEGMAIL_UI_PORT", "SEGMAIL_SMTP_PORT", "SEGMAIL_PUBLIC_PORT")}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SEGMAIL_", "AIRFLOW"))}
    env.update({"AIRFLOW_HOME": str(home), **{k: str(v) for k, v in ports.items()}})
    # Airflow's log servers listen on fixed ports (8793, 8794) on every interface: free ones here,
    # so a `make airflow` running beside the tests does not collide.
    env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] = str(free_port())
    env["AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT"] = str(free_port())
    log = tmp_path / "make-airflow.log"
    with log.open("w") as out:
        launcher = subprocess.Popen(
            [sys.executable, "-m", "segmail.dev.local"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    yield launcher, home, ports, log
    for process in _processes_of(home, _sessions_below(launcher) if launcher.poll() is None else set()):
        process.kill()


@pytest.mark.airflow
def test_ctrl_c_stops_everything_it_started(make_airflow):
    launcher, home, ports, log = make_airflow
    ui = f"http://127.0.0.1:{ports['SEGMAIL_UI_PORT']}"
    assert _wait_for(f"{ui}/api/v2/monitor/health", launcher, START_SECONDS) == 200
    assert _wait_for(f"{ui}/segmail/", launcher, 60) != 404  # the plugin, from the package's entry point
    sessions = _sessions_below(launcher)
    started = _processes_of(home, sessions)
    names = " ".join(" ".join(p.cmdline()) for p in started)
    components = ("scheduler", "triggerer", "dag-processor", "api_server")
    assert all(f"airflow {c}" in names for c in components), names
    assert names.count("LocalExecutor") == local.laptop_parallelism(), names  # not 32 on a laptop
    listening = {
        (c.laddr.ip, c.laddr.port)
        for p in started
        for c in p.net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN
    }
    assert {ip for ip, port in listening if port in ports.values()} == {"127.0.0.1"}, listening
    assert {port for _ip, port in listening} >= set(ports.values()), listening
    os.killpg(launcher.pid, signal.SIGINT)  # Ctrl-C: the terminal signals its foreground group
    stop_started = time.monotonic()
    left = started
    while left and time.monotonic() - stop_started < STOP_SECONDS:
        time.sleep(0.5)
        left = _processes_of(home, sessions)
    output = log.read_text()
    assert not left, [(p.pid, p.cmdline()[:3]) for p in left]
    assert launcher.wait(timeout=5) == 0
    assert "SIGINT: stopping Airflow, the public app and the SMTP sink" in output
    assert "Traceback" not in output, output[-3000:]
    assert f"UI:        {ui}/   (log in as admin" in output


def test_the_api_server_listens_where_the_banner_says(monkeypatch):
    for name in CONFIGURED:  # unset, and restored after the test whatever configure_airflow set
        monkeypatch.delenv(name, raising=False)
    assert local.configure_airflow(8123) == "http://127.0.0.1:8123"
    assert os.environ["AIRFLOW__API__HOST"] == "127.0.0.1"
    assert os.environ["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:8123/execution/"
    assert os.environ["AIRFLOW__CORE__PARALLELISM"] == str(local.laptop_parallelism())
    os.environ["AIRFLOW__API__HOST"] = "0.0.0.0"  # opened up on purpose: reachable at 127.0.0.1 too
    assert local.configure_airflow(8123) == "http://127.0.0.1:8123"


@pytest.mark.parametrize(("cores", "slots"), [(1, 4), (2, 4), (4, 8), (8, 16), (64, 16)])
def test_parallelism_is_sized_to_the_machine(cores, slots):
    assert local.laptop_parallelism(cores) == slots


def test_the_sample_is_seeded_on_the_first_start_only(engine, tmp_path, monkeypatch):
    from segmail.contacts import salespeople

    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SEGMAIL_INBOX", str(tmp_path / "inbox"))
    first = local.seed_sample_once()
    assert first.startswith("sample contacts dropped: contacts-")
    assert len(list((tmp_path / "inbox").glob("*.csv"))) == 1
    salespeople.add_salesperson(code="MB", name="Maria B. (edited)", email="maria@example.com")
    second = local.seed_sample_once()  # a restart
    assert second == f"sample data seeded on the first start ({first.split(': ')[1]})"
    assert len(list((tmp_path / "inbox").glob("*.csv"))) == 1
    edited = {p["code"]: p["name"] for p in salespeople.list_salespeople()}
    assert edited["MB"] == "Maria B. (edited)"
