"""The embedded local setup shared by `make demo`, `make airflow` and `make serve-public`.

Everything lives under AIRFLOW_HOME (default `.airflow/` in the checkout): Airflow's SQLite
metadata DB, segmail's SQLite DB, the inbox, the outbox of the local SMTP server, the login
password and the key that signs unsubscribe links (both generated on first use, never in code,
never printed).

`make airflow` listens on 127.0.0.1 only (AIRFLOW__API__HOST and SEGMAIL_PUBLIC_HOST open it up),
seeds the sample data on its first start only, and on Ctrl-C or SIGTERM stops every process it
started (see `segmail.dev.processes`).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

from segmail.dev.processes import GRACE_SECONDS, Children

ROOT = Path(__file__).resolve().parents[3]  # the checkout: plugins/segmail/dev/local.py
SMTP_POOL_SLOTS = 4
SMS_POOL_SLOTS = 2  # SMS batches at once: a gateway's submit rate is shared by all of them
SIGNING_KEY_FILE = "segmail_signing_key"
SEEDED_MARKER = "sample-seeded"  # in AIRFLOW_HOME/segmail: the sample data went in once
DEMO_MAILTO = "unsubscribe@autohaus-demo.example"  # the demo mailings' From domain
MAX_PARALLELISM = 16


def configure_environment() -> None:
    """Defaults for running outside `make` too; must happen before Airflow is imported. The plugin
    comes through the package's `airflow.plugins` entry point, so Airflow's plugins folder stays its
    default (AIRFLOW_HOME/plugins) rather than plugins/, which only holds the package itself."""
    os.environ.setdefault("AIRFLOW_HOME", str(ROOT / ".airflow"))
    os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(ROOT / "dags"))
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


def ensure_sms_pool() -> None:
    """The pool the SMS mailing DAGs' send tasks run in (SEGMAIL_SMS_POOL, default `sms`)."""
    from airflow.models.pool import Pool

    from segmail import settings

    Pool.create_or_update_pool(
        settings.current().sms_pool,
        slots=SMS_POOL_SLOTS,
        description="segmail: concurrent SMS batches",
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


def ensure_signing_key() -> None:
    """The key of the `segmail_signing` connection: generated once into AIRFLOW_HOME (mode 0600) and
    handed to every process started from here as AIRFLOW_CONN_SEGMAIL_SIGNING. A connection
    already in the environment wins."""
    if os.environ.get("AIRFLOW_CONN_SEGMAIL_SIGNING"):
        return
    path = home() / SIGNING_KEY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
            out.write(secrets.token_urlsafe(32))
    except FileExistsError:
        pass
    key = path.read_text().strip()
    os.environ["AIRFLOW_CONN_SEGMAIL_SIGNING"] = json.dumps({"conn_type": "generic", "password": key})


def configure_unsubscribe() -> str:
    """Signed unsubscribe links pointing at the local public app (http: so mails carry no
    List-Unsubscribe-Post, which promises https); returns the public URL."""
    from segmail import settings

    ensure_signing_key()
    os.environ.setdefault("SEGMAIL_PUBLIC_URL", f"http://127.0.0.1:{settings.current().public_port}")
    os.environ.setdefault("SEGMAIL_UNSUBSCRIBE_MAILTO", DEMO_MAILTO)
    return os.environ["SEGMAIL_PUBLIC_URL"]


def start_public_app(children: Children) -> str:
    """`segmail serve-public` as a child process, logging to AIRFLOW_HOME/segmail/public.log;
    returns the address it listens on, once it answers."""
    from segmail import settings

    config = settings.current()
    log_path = home() / "segmail" / "public.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("a") as log:
        app = children.start(
            [sys.executable, "-m", "segmail.cli.main", "serve-public"], stdout=log, stderr=subprocess.STDOUT
        )
    address = f"http://{config.public_host}:{config.public_port}"
    if not _answers(app, _local(address) + "/healthz"):
        sys.exit(
            f"the public app did not start on {address} (see {log_path}); "
            "is the port taken? SEGMAIL_PUBLIC_PORT chooses another"
        )
    return address


def _local(address: str) -> str:
    """An address to reach a server at from this machine (one listening on all interfaces, too)."""
    return address.replace("0.0.0.0", "127.0.0.1").replace("[::]", "[::1]")


def _answers(process: subprocess.Popen, url: str, *, seconds: float = 30) -> bool:
    import urllib.request

    deadline = time.monotonic() + seconds
    while process.poll() is None and time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                return answer.status == 200
        except OSError:
            time.sleep(0.2)
    return False


def drop_sample_into_inbox() -> Path:
    from segmail.imports import inbox
    from segmail.settings import include_dir

    folder = Path(inbox.default_inbox())
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"contacts-{time.strftime('%Y%m%d-%H%M%S')}.csv"
    shutil.copy(include_dir() / "sample" / "contacts.csv", target)
    return target


def seed_sample_once() -> str:
    """Salespeople, segments and the sample contacts on the first start only (also after `make
    demo`, which seeds too), so a restart does not drop the sample into the inbox again or undo
    edits to the sample salespeople; says what happened, for the banner."""
    marker = home() / "segmail" / SEEDED_MARKER
    if marker.exists():
        return f"sample data seeded on the first start ({marker.read_text().strip()})"
    seed_sample_setup()
    sample = drop_sample_into_inbox()
    mark_seeded(sample.name)
    return f"sample contacts dropped: {sample.name}"


def mark_seeded(sample_name: str) -> None:
    marker = home() / "segmail" / SEEDED_MARKER
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(f"{sample_name}\n")


def start_smtp_sink(children: Children, port: int) -> None:
    from segmail.dev.smtpsink import smtp_connection_json

    outbox = home() / "segmail" / "outbox"
    sink = children.start(
        [sys.executable, "-m", "segmail.dev.smtpsink", str(outbox), str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    print(sink.stdout.readline().strip(), flush=True)
    os.environ["AIRFLOW_CONN_SMTP_DEFAULT"] = smtp_connection_json(port)


def configure_airflow(port: int) -> str:
    """The api-server on 127.0.0.1 (unless AIRFLOW__API__HOST says otherwise), the LocalExecutor
    with parallelism sized to the machine; returns the UI's address."""
    os.environ["AIRFLOW__API__PORT"] = str(port)
    os.environ.setdefault("AIRFLOW__API__HOST", "127.0.0.1")
    address = _local(f"http://{os.environ['AIRFLOW__API__HOST']}:{port}")
    # Task processes report to the api-server's execution API: same port as the UI.
    os.environ["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] = f"{address}/execution/"
    os.environ.setdefault("AIRFLOW__CORE__EXECUTOR", "LocalExecutor")
    os.environ.setdefault("AIRFLOW__CORE__PARALLELISM", str(laptop_parallelism()))
    return address


def laptop_parallelism(cores: int | None = None) -> int:
    """Task slots (and so LocalExecutor workers): two per core, between 4 and MAX_PARALLELISM."""
    return max(4, min(MAX_PARALLELISM, 2 * (cores or os.cpu_count() or 1)))


def print_banner(*, ui: str, password: str, public: str, seeded: str) -> None:
    from segmail import settings

    listens = os.environ["AIRFLOW__API__HOST"]
    where = "" if listens == "127.0.0.1" else f"   (listening on {listens})"
    print(
        f"""
segmail on Airflow
  UI:        {ui}/{where}   (log in as admin / {password})
  pages:     {ui}/segmail/   ("Mailings" in the UI navigation)
  public:    {public}   (unsubscribe links in mails: {settings.current().public_url}/u/...; log {home() / "segmail" / "public.log"})
  inbox:     {settings.current().inbox}   ({seeded})
  outbox:    {home() / "segmail" / "outbox"}   (every mail sent, as .eml)
Trigger contacts_import, then mailing__newsletter. Ctrl-C stops everything (within {GRACE_SECONDS:.0f} s).
""",
        flush=True,
    )


class _Stop(BaseException):
    """Ctrl-C, SIGTERM or SIGHUP arrived (a BaseException, so no `except Exception` swallows it)."""


def _raise_stop(signum: int, _frame: FrameType | None) -> None:
    raise _Stop(signal.Signals(signum).name)


def _on_signals(handler: signal.Handlers | object) -> None:
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, handler)


def start_everything(children: Children) -> subprocess.Popen:
    """Databases, login, pool and sample data, then the SMTP sink, the public app and `airflow
    standalone` (returned), each a child in its own session."""
    from segmail import settings
    from segmail.dev.smtpsink import free_port

    config = settings.current()
    ui = configure_airflow(config.ui_port)
    password = ensure_login()
    configure_unsubscribe()
    migrate_databases()
    ensure_smtp_pool()
    ensure_sms_pool()
    seeded = seed_sample_once()
    start_smtp_sink(children, config.smtp_port or free_port())
    public = start_public_app(children)
    print_banner(ui=ui, password=password, public=public, seeded=seeded)
    return children.start(["airflow", "standalone"])


def run_airflow() -> int:
    """`make airflow`: everything until Ctrl-C (or SIGTERM), then stop all of it; a second Ctrl-C
    while stopping kills at once."""
    configure_environment()
    children = Children()
    _on_signals(_raise_stop)
    try:
        code = start_everything(children).wait()
        print(f"airflow standalone exited ({code}); stopping the rest", flush=True)
    except _Stop as stop:
        code = 0
        print(f"\n{stop}: stopping Airflow, the public app and the SMTP sink ...", flush=True)
    finally:
        _on_signals(lambda *_: setattr(children, "hurry", True))
        print(children.stop(), flush=True)
    return code


def run_public() -> int:
    """`make serve-public`: the public app alone, on the local setup's database and signing key,
    to try the unsubscribe links of the mails `make demo` sent."""
    configure_environment()
    configure_unsubscribe()
    from segmail.cli.main import main

    try:
        return main(["serve-public"])
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(run_public() if sys.argv[1:] == ["serve-public"] else run_airflow())
