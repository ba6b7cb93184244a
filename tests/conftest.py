"""Shared fixtures: a segmail database on SQLite and on a real PostgreSQL, and a migrated Airflow home.

Airflow reads its configuration at import time, so the environment is set here, before any test
module imports airflow. Under CI=true a PostgreSQL that cannot be reached fails the run instead of
skipping the PostgreSQL variants.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest
from tests_support import TEST_SIGNING_KEY

ROOT = Path(__file__).resolve().parents[1]
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="segmail-airflow-"))
os.environ.update(
    {
        "AIRFLOW_HOME": str(_AIRFLOW_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "SEGMAIL_INCLUDE_DIR": str(ROOT / "include"),
        # Unsubscribe links: a public URL, a mailto address and a signing key, as `make demo` sets up.
        "SEGMAIL_PUBLIC_URL": "https://unsubscribe.autohaus-demo.example",
        "SEGMAIL_UNSUBSCRIBE_MAILTO": "unsubscribe@autohaus-demo.example",
        "AIRFLOW_CONN_SEGMAIL_SIGNING": json.dumps(
            {"conn_type": "generic", "password": TEST_SIGNING_KEY.decode()}
        ),
    }
)
os.environ.pop("SEGMAIL_DB_URL", None)
os.environ.pop("AIRFLOW_CONN_SEGMAIL_DB", None)

PG_CANDIDATES = (
    os.environ.get("SEGMAIL_TEST_PG_URL", ""),
    "postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
    "postgresql+psycopg://root@127.0.0.1:5432/root",
    "postgresql+psycopg://root@127.0.0.1:5432/postgres",
)
SEGMAIL_TABLES = (
    "segmail_feedback_reports",
    "segmail_activity_log",
    "segmail_suppressions",
    "segmail_deliveries",
    "segmail_delivery_batches",
    "segmail_approvals",
    "segmail_mailing_runs",
    "segmail_test_mails",
    "segmail_import_issues",
    "segmail_import_runs",
    "segmail_memberships",
    "segmail_contacts",
    "segmail_segments",
    "segmail_salespeople",
    "segmail_send_budgets",
)


def _admin_url() -> str | None:
    from sqlalchemy import create_engine, text

    for url in filter(None, PG_CANDIDATES):
        try:
            engine = create_engine(url, isolation_level="AUTOCOMMIT")
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            engine.dispose()
            return url
        except Exception:  # try the next user/database the CI machine may have
            continue
    return None


@pytest.fixture(scope="session")
def pg_database_url():
    """A fresh PostgreSQL database for this test session, dropped at the end."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin = _admin_url()
    if admin is None:
        if os.environ.get("CI") == "true":
            pytest.fail(
                "CI=true but no PostgreSQL on 127.0.0.1:5432 could be reached (tried postgres and root)"
            )
        pytest.skip("no PostgreSQL reachable on 127.0.0.1:5432")
    name = f"segmail_test_{uuid.uuid4().hex[:10]}"
    admin_engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    with admin_engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(admin).set(database=name).render_as_string(hide_password=False)
    yield url
    with admin_engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin_engine.dispose()


@pytest.fixture(scope="session")
def pg_engine(pg_database_url):
    from segmail.store.db import make_engine
    from segmail.store.migrate import upgrade

    engine = make_engine(pg_database_url)
    upgrade(engine)
    yield engine
    engine.dispose()


def _empty_pg(engine) -> None:
    from sqlalchemy import text

    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(SEGMAIL_TABLES)} RESTART IDENTITY CASCADE"))


@pytest.fixture(scope="session")
def migrated_sqlite_file(tmp_path_factory):
    """An empty SQLite database at head, migrated once per session and copied for each test."""
    from segmail.store.db import make_engine
    from segmail.store.migrate import upgrade

    path = tmp_path_factory.mktemp("sqlite-template") / "segmail.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()  # the last connection closes: the WAL is checkpointed into the file
    return path


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request, tmp_path):
    """The URL of an empty, migrated segmail database: once on SQLite, once on PostgreSQL."""
    if request.param == "sqlite":
        import shutil

        path = tmp_path / "segmail.db"
        shutil.copyfile(request.getfixturevalue("migrated_sqlite_file"), path)
        return f"sqlite:///{path}"
    engine = request.getfixturevalue("pg_engine")
    _empty_pg(engine)
    return engine.url.render_as_string(hide_password=False)


@pytest.fixture
def engine(db_url, monkeypatch):
    """An engine on the test database, also installed as segmail's default (SEGMAIL_DB_URL)."""
    from segmail.store.db import default_engine, make_engine

    monkeypatch.setenv("SEGMAIL_DB_URL", db_url)
    default_engine.cache_clear()
    engine = make_engine(db_url)
    yield engine
    engine.dispose()
    default_engine.cache_clear()


@pytest.fixture(scope="session")
def airflow_home():
    """Airflow's metadata DB (SQLite) migrated once for the session, for dag.test()."""
    airflow = Path(sys.executable).with_name("airflow")
    result = subprocess.run([str(airflow), "db", "migrate"], capture_output=True, text=True, env=os.environ)
    assert result.returncode == 0, result.stderr[-3000:]
    return _AIRFLOW_HOME


@pytest.fixture
def write_csv(tmp_path):
    """write_csv(text, name=..., encoding=...) -> Path; `text` uses \\n, written with \\r\\n like Excel."""

    def _write(
        content: str, *, name: str = "contacts.csv", encoding: str = "utf-8", crlf: bool = True
    ) -> Path:
        path = tmp_path / name
        data = content.replace("\n", "\r\n") if crlf else content
        path.write_bytes(data.encode(encoding))
        return path

    return _write


@pytest.fixture
def smtp_sink(monkeypatch, tmp_path):
    """A real SMTP server in the test process; `smtp_default` points at it."""
    from segmail.dev.smtpsink import SmtpSink

    with SmtpSink(store_dir=tmp_path / "outbox") as sink:
        monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", sink.connection_uri)
        yield sink


AUDIENCE_CSV = (
    "External ID,Country Code,First Name,Last Name,Email,Mobile Number,Language,Segments,Salesperson,Email Opt Out\n"
    "E1,AT,Anna,Müller,anna@example.com,,de-AT,Newsletter,MB,\n"
    "E2,CA,Chloé,Tremblay,chloe@example.ca,,fr-CA,Newsletter,,\n"
    "E3,IT,Giulia,Rossi,giulia@example.it,,it,Newsletter,,\n"
    'E4,US,Bob,"Smith\nBcc: evil@attacker.example",bob@example.com,,en-US,Newsletter,,\n'
    "E5,DE,Otto,Optout,otto@example.de,,de,Newsletter,,yes\n"
    "E6,DE,Nora,Nomail,,0151 23456789,de,Newsletter,,\n"
    "E7,AT,Andreas,Müller,ANNA@example.com,,de,Newsletter,,\n"
    "E8,DE,Xaver,Outside,xaver@example.de,,de,VIP,,\n"
)


@pytest.fixture
def newsletter_audience(engine, tmp_path):
    """Salespeople, segments and 8 contacts covering languages, skips and a header-injection attempt."""
    from segmail.contacts import salespeople, segments
    from segmail.imports.pipeline import import_file

    salespeople.add_salesperson(
        code="MB", name="Maria Berger", email="maria.berger@example.com", engine=engine
    )
    segments.create_segment(name="Newsletter", salesperson="MB", engine=engine)
    segments.create_segment(name="VIP", engine=engine)
    path = tmp_path / "audience.csv"
    path.write_text(AUDIENCE_CSV, encoding="utf-8")
    result = import_file(path, engine=engine)
    assert result.created == 8, result
    return engine


@pytest.fixture(scope="session")
def kannel_lab():
    """A private Kannel for the session: bearerbox, smsbox and fakesmsc as the SMS centre on loopback
    ports (tests/sms_support.py). Under CI=true a machine without Kannel fails instead of skipping."""
    from sms_support import sms_lab

    with sms_lab() as lab:
        yield lab


@pytest.fixture
def kannel(kannel_lab, engine, monkeypatch):
    """The session's Kannel with the public app serving this test's database on the port Kannel
    calls back (reports, STOP); `sms_default` and SEGMAIL_PUBLIC_URL point at them."""
    with kannel_lab.serving(engine, monkeypatch):
        yield kannel_lab
