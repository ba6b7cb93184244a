"""Every SEGMAIL_* setting and connection id in one place, resolved at call time, never at import.

`current()` reads the environment each time it is called, so a test (or a task) that changes a
variable sees the change; nothing else in segmail reads SEGMAIL_* variables.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DB_CONN_ID = "segmail_db"
DEFAULT_DB_FILE = "segmail.db"
_PACKAGE_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True, kw_only=True)
class Settings:
    airflow_home: Path
    include_dir: Path
    db_url: str | None  # SEGMAIL_DB_URL as given; None: the `segmail_db` connection or SQLite
    inbox: str
    import_cron: str | None  # None: the import DAG runs only when triggered
    import_workers: int
    smtp_pool: str
    smtp_conn_id: str
    notify_from: str
    ui_port: int
    smtp_port: int  # 0: any free port (the local SMTP sink of `make airflow`)


def _int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, not {value!r}") from None


def _default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def current() -> Settings:
    env = os.environ.get
    home = Path(env("AIRFLOW_HOME") or Path.home() / "airflow")
    return Settings(
        airflow_home=home,
        include_dir=Path(env("SEGMAIL_INCLUDE_DIR") or _PACKAGE_ROOT / "include"),
        db_url=env("SEGMAIL_DB_URL") or None,
        inbox=env("SEGMAIL_INBOX") or str(home / "segmail" / "inbox"),
        import_cron=env("SEGMAIL_IMPORT_CRON", "0 2 * * *") or None,
        import_workers=max(1, _int("SEGMAIL_IMPORT_WORKERS", _default_workers())),
        smtp_pool=env("SEGMAIL_SMTP_POOL") or "smtp",
        smtp_conn_id=env("SEGMAIL_SMTP_CONN_ID") or "smtp_default",
        notify_from=env("SEGMAIL_NOTIFY_FROM") or "segmail@localhost",
        ui_port=_int("SEGMAIL_UI_PORT", 8080),
        smtp_port=_int("SEGMAIL_SMTP_PORT", 0),
    )


def airflow_home() -> Path:
    return current().airflow_home


def include_dir() -> Path:
    """The project's include/ folder: SEGMAIL_INCLUDE_DIR, else the one beside plugins/."""
    return current().include_dir


def sqlalchemy_url_from_uri(uri: str) -> str:
    """Turn an Airflow connection URI into a SQLAlchemy URL with the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://", "postgresql+psycopg2://"):
        if uri.startswith(prefix):
            return "postgresql+psycopg://" + uri[len(prefix) :]
    return uri


def _airflow_connection_uri() -> str | None:
    """The `segmail_db` Airflow connection's URI, if Airflow knows one; None otherwise."""
    if env_uri := os.environ.get("AIRFLOW_CONN_SEGMAIL_DB"):
        return env_uri
    try:
        from airflow.sdk import Connection

        return Connection.get(DB_CONN_ID).get_uri()
    except Exception:  # no Airflow context, or no such connection: fall back to SQLite
        return None


def database_url() -> str:
    """SEGMAIL_DB_URL, else the Airflow connection `segmail_db`, else SQLite in AIRFLOW_HOME."""
    settings = current()
    if settings.db_url:
        return sqlalchemy_url_from_uri(settings.db_url)
    if uri := _airflow_connection_uri():
        return sqlalchemy_url_from_uri(uri)
    settings.airflow_home.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{settings.airflow_home / DEFAULT_DB_FILE}"
