"""The embedded local setup shared by `make demo` and `make airflow`.

Everything lives under AIRFLOW_HOME (default `.airflow/` in the checkout): Airflow's SQLite
metadata DB, segmail's SQLite DB, the inbox, the outbox of the local SMTP server, and the login
password (generated on first use, never in code).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]  # the checkout: plugins/segmail/dev/local.py
SMTP_POOL_SLOTS = 4


def configure_environment() -> None:
    """Defaults for running outside `make` too; must happen before Airflow is imported."""
    os.environ.setdefault("AIRFLOW_HOME", str(ROOT / ".airflow"))
    os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(ROOT / "dags"))
    os.environ.setdefault("AIRFLOW__CORE__PLUGINS_FOLDER", str(ROOT / "plugins"))
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")


def home() -> Path:
    from segmail.settings import airflow_home

    return airflow_home()


def migrate_databases() -> None:
    """Deploy-time migrations of both databases (tasks only check that segmail's is at head)."""
    from segmail.store import migrate

    result = subprocess.run(["airflow", "db", "migrate"], capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"airflow db migrate failed:\n{result.stderr[-2000:]}")
    migrate.upgrade()


def seed_sample_setup() -> None:
    """Salespeople and segments from include/sample/setup.yaml; existing ones are left as they are."""
    import yaml

    from segmail.contacts import salespeople, segments
    from segmail.errors import AlreadyExists
    from segmail.settings import include_dir

    setup = yaml.safe_load((include_dir() / "sample" / "setup.yaml").read_text(encoding="utf-8"))
    for person in setup["salespeople"]:
        salespeople.add_salesperson(**person)
    for segment in setup["segments"]:
        try:
            segments.create_segment(**segment)
        except AlreadyExists:
            pass


def ensure_smtp_pool() -> None:
    """The pool the mailing DAGs' send tasks run in (SEGMAIL_SMTP_POOL, default `smtp`)."""
    from airflow.models.pool import Pool

    from segmail import settings

    Pool.create_or_update_pool(
        settings.current().smtp_pool,
        slots=SMTP_POOL_SLOTS,
        description="segmail: concurrent SMTP batches",
        include_deferred=False,
    )


def ensure_login(username: str = "admin") -> str:
    """Airflow's simple auth manager with one admin; the password is generated once and kept in AIRFLOW_HOME."""
    passwords = home() / "segmail_passwords.json"
    if not passwords.exists():
        passwords.parent.mkdir(parents=True, exist_ok=True)
        passwords.write_text(json.dumps({username: secrets.token_urlsafe(12)}))
        passwords.chmod(0o600)
    os.environ["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] = f"{username}:admin"
    os.environ["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"] = str(passwords)
    return json.loads(passwords.read_text())[username]


def drop_sample_into_inbox() -> Path:
    from segmail.imports import inbox
    from segmail.settings import include_dir

    folder = Path(inbox.default_inbox())
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"contacts-{time.strftime('%Y%m%d-%H%M%S')}.csv"
    shutil.copy(include_dir() / "sample" / "contacts.csv", target)
    return target


def start_smtp_sink(port: int) -> subprocess.Popen:
    outbox = home() / "segmail" / "outbox"
    sink = subprocess.Popen(
        [sys.executable, "-m", "segmail.dev.smtpsink", str(outbox), str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    print(sink.stdout.readline().strip(), flush=True)
    os.environ["AIRFLOW_CONN_SMTP_DEFAULT"] = f"smtp://127.0.0.1:{port}?disable_ssl=true&disable_tls=true"
    return sink


def run_airflow() -> int:
    """`make airflow`: prepare everything, then `airflow standalone` until Ctrl-C."""
    configure_environment()
    from segmail import settings
    from segmail.dev.smtpsink import free_port

    config = settings.current()
    port = config.ui_port
    os.environ["AIRFLOW__API__PORT"] = str(port)
    # Task processes report to the api-server's execution API: same port as the UI.
    os.environ["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] = f"http://127.0.0.1:{port}/execution/"
    os.environ.setdefault("AIRFLOW__CORE__EXECUTOR", "LocalExecutor")
    password = ensure_login()
    migrate_databases()
    seed_sample_setup()
    ensure_smtp_pool()
    sample = drop_sample_into_inbox()
    sink = start_smtp_sink(config.smtp_port or free_port())
    print(
        f"""
segmail on Airflow
  UI:        http://127.0.0.1:{port}/   (log in as admin / {password})
  pages:     http://127.0.0.1:{port}/segmail/   ("Segment mailings" in the UI navigation)
  inbox:     {sample.parent}   (sample contacts dropped: {sample.name})
  outbox:    {home() / "segmail" / "outbox"}   (every mail sent, as .eml)
Trigger contacts_import, then mailing__newsletter. Ctrl-C stops everything.
""",
        flush=True,
    )
    try:
        return subprocess.call(["airflow", "standalone"])
    except KeyboardInterrupt:
        return 0
    finally:
        sink.terminate()
        sink.wait()


if __name__ == "__main__":
    sys.exit(run_airflow())
