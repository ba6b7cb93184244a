"""Where segmail finds its database and its include/ folder, resolved at call time, never at import."""

from __future__ import annotations

import os
from pathlib import Path

DB_CONN_ID = "segmail_db"
DEFAULT_DB_FILE = "segmail.db"


def airflow_home() -> Path:
    return Path(os.environ.get("AIRFLOW_HOME") or Path.home() / "airflow")


def include_dir() -> Path:
    """The project's include/ folder: SEGMAIL_INCLUDE_DIR, else the one beside plugins/."""
    if env := os.environ.get("SEGMAIL_INCLUDE_DIR"):
        return Path(env)
    return Path(__file__).resolve().parents[2] / "include"


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
    if url := os.environ.get("SEGMAIL_DB_URL"):
        return sqlalchemy_url_from_uri(url)
    if uri := _airflow_connection_uri():
        return sqlalchemy_url_from_uri(uri)
    home = airflow_home()
    home.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{home / DEFAULT_DB_FILE}"
