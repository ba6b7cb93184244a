"""Which database the `segmail` command works on, and the rule that only `db upgrade` creates one.

AIRFLOW_HOME decides, as it does for Airflow. When it is unset, the command looks for the local
setup of `make demo` and `make airflow`: `.airflow/` in the current directory, else `.airflow/` in
the checkout segmail is installed from (editable install), else Airflow's default `~/airflow`. The
choice is exported as AIRFLOW_HOME, so Airflow, if this process imports it, agrees.

A command other than `db upgrade` never creates a database: a SQLite file that does not exist is a
one-line error naming the file and how it was chosen; a database without segmail's tables, or with
an older schema, is explained by `explain_database_error`.
"""

from __future__ import annotations

import os
from pathlib import Path

from segmail.errors import SegmailError

HOME_RULE = (
    "The database: SEGMAIL_DB_URL, else the Airflow connection segmail_db (AIRFLOW_CONN_SEGMAIL_DB), "
    "else segmail.db in AIRFLOW_HOME. When AIRFLOW_HOME is unset, segmail uses the local setup of "
    "`make demo`/`make airflow`: .airflow/ in the current directory, else in the checkout segmail is "
    "installed from, else ~/airflow. Only `segmail db upgrade` creates a database."
)
SETUP_HINT = "run `segmail db upgrade` to create it (or `make demo` in the checkout for the sample data)"
LOCAL_HOME = ".airflow"


class NoDatabase(SegmailError):
    """The command would have to create the database to run: it says where it looked instead."""


def _checkout() -> Path | None:
    """The checkout segmail runs from (an editable install), or None for an installed package."""
    root = Path(__file__).resolve().parents[3]  # plugins/segmail/cli/database.py
    return root if (root / "pyproject.toml").is_file() and (root / "dags").is_dir() else None


def choose_airflow_home(*, cwd: Path | None = None) -> str:
    """Set AIRFLOW_HOME by the rule above when it is unset; returns how the home was chosen."""
    if os.environ.get("AIRFLOW_HOME"):
        return "set by AIRFLOW_HOME"
    cwd = cwd or Path.cwd()
    checkout = _checkout()
    for where, folder in (
        (f"{LOCAL_HOME}/ in the current directory", cwd / LOCAL_HOME),
        (f"the checkout's {LOCAL_HOME}/", checkout / LOCAL_HOME if checkout else None),
    ):
        if folder is not None and folder.is_dir():
            os.environ["AIRFLOW_HOME"] = str(folder.resolve())
            return where
    return f"AIRFLOW_HOME is unset and there is no {LOCAL_HOME}/ here or in the checkout"


def _url_source(url: str) -> str:
    from segmail import settings

    if os.environ.get("SEGMAIL_DB_URL"):
        return "set by SEGMAIL_DB_URL"
    if os.environ.get("AIRFLOW_CONN_SEGMAIL_DB"):
        return "set by AIRFLOW_CONN_SEGMAIL_DB"
    if url == f"sqlite:///{settings.current().airflow_home / settings.DEFAULT_DB_FILE}":
        return ""
    return f"set by the Airflow connection {settings.DB_CONN_ID}"


def shown_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def require_database(*, home_source: str) -> None:
    """Raise NoDatabase when the SQLite file the command would open does not exist (opening it would
    create an empty one). Other databases exist or fail to connect; their schema is checked on use."""
    from sqlalchemy.engine import make_url

    from segmail import settings

    url = settings.database_url(create_home=False)
    path = make_url(url).database if url.startswith("sqlite") else None
    if not path or path == ":memory:" or path.startswith("file:") or Path(path).exists():
        return
    source = _url_source(url) or home_source
    raise NoDatabase(f"no segmail database at {path} ({source}); {SETUP_HINT}")


def explain_database_error(exc: Exception) -> str | None:
    """One line for a database error a user can fix (schema missing or behind, server unreachable),
    naming the database; None for anything else, which stays a traceback."""
    from sqlalchemy.exc import OperationalError, ProgrammingError

    from segmail import settings
    from segmail.store.migrate import SchemaNotAtHead, require_head

    if not isinstance(exc, OperationalError | ProgrammingError):
        return None
    where = shown_url(settings.database_url(create_home=False))
    try:
        require_head()
    except SchemaNotAtHead as behind:
        return f"{where}: {behind}"
    except OperationalError as unreachable:
        reason = str(unreachable.orig).strip().splitlines() or [type(unreachable.orig).__name__]
        return f"cannot reach the segmail database at {where}: {reason[0]}"
    return None
