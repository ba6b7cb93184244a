"""Scale-out: the real Airflow components as separate processes with the CeleryExecutor.

PostgreSQL holds Airflow's metadata and segmail's data (two fresh databases), Redis is the broker,
and api-server, scheduler, dag-processor and a Celery worker run as their own processes. Through
the REST API the test unpauses and triggers `contacts_import` on the sample file, then
`mailing__newsletter`, waits for both runs, and checks the delivery rows and the mails received
by an SMTP server in the test. Then two copies of the newsletter with `approval` on: one run is
approved and one rejected through the REST API (PATCH .../hitlDetails, as a user would), one times
out (the scheduler's sweep), and one waits past its deadline so the triggerer sends the late-run
alert (tests/approval_support.py). Every process it started is stopped, also on failure.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from approval_support import add_approval_mailings, check_approvals_on_celery
from segmail.dev.smtpsink import SmtpSink, free_port
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = "redis://127.0.0.1:6379/11"
pytestmark = [pytest.mark.postgres, pytest.mark.scaleout]


def redis_available() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_timeout=2).ping())
    except redis.RedisError:
        return False


@pytest.fixture
def databases(pg_database_url):
    """Two fresh PostgreSQL databases (Airflow metadata, segmail), dropped afterwards."""
    admin_url = make_url(pg_database_url)
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    names = {kind: f"segmail_scale_{kind}_{uuid.uuid4().hex[:8]}" for kind in ("airflow", "data")}
    with admin.connect() as conn:
        for name in names.values():
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    urls = {kind: admin_url.set(database=name) for kind, name in names.items()}
    yield urls
    with admin.connect() as conn:
        for name in names.values():
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


class Cluster:
    """The Airflow processes of one test; `stop()` ends every one of them (process groups)."""

    def __init__(self, env: dict, logs: Path) -> None:
        self.env, self.logs, self.processes = env, logs, {}

    def airflow(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [str(Path(sys.executable).with_name("airflow")), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"airflow {' '.join(args)} failed:\n{result.stderr[-3000:]}")
        return result

    def start(self, name: str, *args: str) -> None:
        log = (self.logs / f"{name}.log").open("w")
        self.processes[name] = subprocess.Popen(
            [str(Path(sys.executable).with_name("airflow")), *args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise AssertionError(f"{name} exited with {process.returncode}:\n" + self.tail(name))

    def tail(self, name: str, chars: int = 4000) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for process in self.processes.values():
            try:
                process.wait(timeout=max(1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def wait_for(condition, *, timeout: float, what: str, cluster: Cluster, every: float = 1.0):  # noqa: ANN001, ANN201
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        cluster.check_alive()
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(
        f"timed out after {timeout:.0f} s waiting for {what}\n--- scheduler\n"
        + cluster.tail("scheduler")
        + "\n--- worker\n"
        + cluster.tail("worker")
    )


def test_import_and_newsletter_on_celery_workers(databases, tmp_path, airflow_home):
    if not redis_available():
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but Redis on 127.0.0.1:6379 is not reachable")
        pytest.skip("no Redis on 127.0.0.1:6379")
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    started = time.monotonic()
    home = tmp_path / "airflow"
    include = tmp_path / "include"
    shutil.copytree(ROOT / "include", include)
    newsletter = include / "mailings" / "newsletter.yaml"  # manual only here: no scheduled run may race
    newsletter.write_text(newsletter.read_text().replace('schedule: "0 8 1 * *"', "schedule:"))
    add_approval_mailings(include, approver="admin")  # "dialog on": answered through the REST API below
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    shutil.copy(include / "sample" / "contacts.csv", inbox / "contacts.csv")
    port = free_port()
    airflow_db = databases["airflow"].render_as_string(hide_password=False)
    data_db = (
        databases["data"]
        .render_as_string(hide_password=False)
        .replace("postgresql+psycopg://", "postgres://")
    )
    passwords = tmp_path / "passwords.json"
    passwords.write_text(json.dumps({"admin": "scale-out-test"}))

    with SmtpSink() as sink:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "SEGMAIL"))},
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": airflow_db,
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": airflow_db.replace(
                "+psycopg://", "+psycopg_async://"
            ),
            "AIRFLOW__CELERY__BROKER_URL": REDIS_URL,
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + airflow_db,
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            "AIRFLOW__SCHEDULER__TRIGGER_TIMEOUT_CHECK_INTERVAL": "2",  # the approval timeout sweep
            "AIRFLOW_CONN_SEGMAIL_DB": data_db,
            "AIRFLOW_CONN_SMTP_DEFAULT": sink.connection_uri,
            "SEGMAIL_INCLUDE_DIR": str(include),
            "SEGMAIL_INBOX": str(inbox),
            "SEGMAIL_IMPORT_CRON": "",  # manual only here
            "SEGMAIL_IMPORT_WORKERS": "1",
            # The unsubscribe links every mail carries (as tests/conftest.py sets them up).
            "SEGMAIL_PUBLIC_URL": os.environ["SEGMAIL_PUBLIC_URL"],
            "SEGMAIL_UNSUBSCRIBE_MAILTO": os.environ["SEGMAIL_UNSUBSCRIBE_MAILTO"],
            "AIRFLOW_CONN_SEGMAIL_SIGNING": os.environ["AIRFLOW_CONN_SEGMAIL_SIGNING"],
        }
        cluster = Cluster(env, tmp_path)
        try:
            cluster.airflow("db", "migrate")
            subprocess.run(
                [str(Path(sys.executable).with_name("segmail")), "db", "upgrade"],
                env=env,
                check=True,
                capture_output=True,
            )
            for line in ("salespeople add MB --name Maria --email maria@example.com",):
                subprocess.run(
                    [str(Path(sys.executable).with_name("segmail")), *line.split()], env=env, check=True
                )
            for segment in (
                "Newsletter",
                "Branch Vienna",
                "Branch Munich",
                "Region North America",
                "Region France",
                "Service Plan Premium",
                "Electric Vehicles",
            ):
                subprocess.run(
                    [
                        str(Path(sys.executable).with_name("segmail")),
                        "segments",
                        "create",
                        segment,
                        "--salesperson",
                        "MB",
                    ],
                    env=env,
                    check=True,
                    capture_output=True,
                )
            cluster.airflow("pools", "set", "smtp", "4", "segmail SMTP batches")
            cluster.airflow("pools", "set", "sms", "2", "segmail SMS batches")
            cluster.start("api-server", "api-server", "--port", str(port), "--host", "127.0.0.1")
            cluster.start("scheduler", "scheduler")
            cluster.start("dag-processor", "dag-processor")
            cluster.start("worker", "celery", "worker", "--concurrency", "2")
            cluster.start("triggerer", "triggerer")  # deadline alert callbacks run there
            base = f"http://127.0.0.1:{port}"

            def healthy() -> bool:
                try:
                    return httpx.get(f"{base}/api/v2/monitor/health", timeout=2).status_code == 200
                except httpx.HTTPError:
                    return False

            wait_for(healthy, timeout=120, what="the api-server", cluster=cluster)
            token = httpx.post(
                f"{base}/auth/token", json={"username": "admin", "password": "scale-out-test"}
            ).json()["access_token"]
            api = httpx.Client(
                base_url=f"{base}/api/v2", headers={"Authorization": f"Bearer {token}"}, timeout=20
            )
            for dag_id in ("contacts_import", "mailing__newsletter"):
                wait_for(
                    lambda d=dag_id: api.get(f"/dags/{d}").status_code == 200,
                    timeout=180,
                    what=f"{dag_id} to be parsed",
                    cluster=cluster,
                )
                assert api.patch(f"/dags/{dag_id}", json={"is_paused": False}).status_code == 200

            def run_to_end(dag_id: str) -> dict:
                created = api.post(f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": {}})
                assert created.status_code == 200, created.text
                run_id = created.json()["dag_run_id"]

                def finished() -> dict | None:
                    run = api.get(f"/dags/{dag_id}/dagRuns/{run_id}").json()
                    return run if run["state"] in ("success", "failed") else None

                run = wait_for(finished, timeout=300, what=f"{dag_id} run {run_id}", cluster=cluster, every=2)
                tis = api.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances").json()["task_instances"]
                assert run["state"] == "success", {
                    t["task_id"] + str(t["map_index"]): t["state"] for t in tis
                }
                return {"run": run, "tis": tis}

            imported = run_to_end("contacts_import")
            assert (inbox / "archive" / "contacts.csv").is_file()
            sent = run_to_end("mailing__newsletter")
            mapped = [t for t in sent["tis"] if t["task_id"] == "send_batch"]
            assert sorted(t["rendered_map_index"] for t in mapped) == ["de #1", "en #2", "fr #3"]
            assert {t["hostname"] for t in imported["tis"] + sent["tis"]} != {""}

            data = create_engine(databases["data"])
            with data.connect() as conn:
                counts = dict(
                    conn.execute(
                        text("SELECT status, COUNT(*) FROM segmail_deliveries GROUP BY status")
                    ).all()
                )
                activity = conn.execute(text("SELECT COUNT(*) FROM segmail_activity_log")).scalar_one()
            data.dispose()
            assert counts == {"sent": 20, "skipped": 1}
            assert activity == 20
            recipients = [r for m in sink.messages for r in m.recipients]
            assert len(recipients) == 20 == len(set(recipients))
            check_approvals_on_celery(
                api,
                lambda condition, what: wait_for(condition, timeout=300, what=what, cluster=cluster, every=1),
                data_engine=create_engine(databases["data"]),
                sink=sink,
            )
            print(f"\nscale-out test: {time.monotonic() - started:.0f} s from start to both runs green")
        finally:
            cluster.stop()
            redis.Redis.from_url(REDIS_URL).flushdb()
