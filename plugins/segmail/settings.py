"""Every SEGMAIL_* setting and connection id in one place, resolved at call time, never at import.

`current()` reads the environment each time it is called, so a test (or a task) that changes a
variable sees the change; nothing else in segmail reads SEGMAIL_* variables.
"""

from __future__ import annotations

import configparser
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, quote, unquote, urlsplit

DB_CONN_ID = "segmail_db"
SIGNING_CONN_ID = "segmail_signing"  # password: the signing key; extra {"previous_keys": [...]}
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
    sms_pool: str  # the pool of SMS send tasks, apart from SMTP's: each channel has its own limits
    smtp_conn_id: str
    notify_from: str
    ui_port: int
    smtp_port: int  # 0: any free port (the local SMTP sink of `make airflow`)
    public_url: str | None  # where recipients reach `segmail serve-public`, e.g. https://mail.example.com
    sms_callback_url: str | None  # where the SMS gateway reaches the public app, if not at public_url
    unsubscribe_mailto: str | None  # e.g. unsubscribe@example.com; mails carry unsubscribe+TOKEN@...
    public_host: str
    public_port: int
    token_max_age_days: int
    bounce_domain: str | None  # VERP: mails go out with Return-Path bounces+TOKEN@<this domain>
    bounce_local_part: str
    bounces_conn_id: str  # the IMAP mailbox that receives bounces, complaints and mailto unsubscribes
    soft_bounce_limit: int  # soft bounces in a row (across runs) that suppress an address
    feedback_cron: str | None  # when `mail_feedback` reads the bounce mailbox; None: only when triggered
    feedback_batch_size: int  # messages fetched, processed and moved per IMAP round trip
    max_bounce_rate: float  # a run whose bounces exceed this share of its sent mails turns red
    max_complaint_rate: float  # the same for spam complaints (Gmail and Yahoo expect < 0.3 %)
    dns_server: str | None  # `segmail mailings validate --dns`: host[:port]; None: the system resolver


def _int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, not {value!r}") from None


def _rate(name: str, default: float) -> float:
    """A share such as 0.05, also written as `5%`."""
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return float(value[:-1]) / 100 if value.endswith("%") else float(value)
    except ValueError:
        raise ValueError(f"{name} must be a share such as 0.05 or 5%, not {value!r}") from None


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
        sms_pool=env("SEGMAIL_SMS_POOL") or "sms",
        smtp_conn_id=env("SEGMAIL_SMTP_CONN_ID") or "smtp_default",
        notify_from=env("SEGMAIL_NOTIFY_FROM") or "segmail@localhost",
        ui_port=_int("SEGMAIL_UI_PORT", 8080),
        smtp_port=_int("SEGMAIL_SMTP_PORT", 0),
        public_url=(env("SEGMAIL_PUBLIC_URL") or "").rstrip("/") or None,
        sms_callback_url=(env("SEGMAIL_SMS_CALLBACK_URL") or "").rstrip("/") or None,
        unsubscribe_mailto=env("SEGMAIL_UNSUBSCRIBE_MAILTO") or None,
        public_host=env("SEGMAIL_PUBLIC_HOST") or "127.0.0.1",
        public_port=_int("SEGMAIL_PUBLIC_PORT", 8090),
        token_max_age_days=_int("SEGMAIL_TOKEN_MAX_AGE_DAYS", 730),
        bounce_domain=env("SEGMAIL_BOUNCE_DOMAIN") or None,
        bounce_local_part=env("SEGMAIL_BOUNCE_LOCAL_PART") or "bounces",
        bounces_conn_id=env("SEGMAIL_BOUNCES_CONN_ID") or "segmail_bounces",
        soft_bounce_limit=max(1, _int("SEGMAIL_SOFT_BOUNCE_LIMIT", 3)),
        feedback_cron=env("SEGMAIL_FEEDBACK_CRON", "*/15 * * * *") or None,
        feedback_batch_size=max(1, _int("SEGMAIL_FEEDBACK_BATCH_SIZE", 200)),
        max_bounce_rate=_rate("SEGMAIL_MAX_BOUNCE_RATE", 0.05),
        max_complaint_rate=_rate("SEGMAIL_MAX_COMPLAINT_RATE", 0.003),
        dns_server=env("SEGMAIL_DNS_SERVER") or None,
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


@dataclass(frozen=True)
class ConnectionInfo:
    """The parts of an Airflow connection segmail reads; `uri` is set when it was given as a URI."""

    conn_id: str
    host: str = ""
    port: int | None = None
    login: str = ""
    password: str = ""
    schema: str = ""
    extra: dict = field(default_factory=dict)
    uri: str = ""


def _from_env_value(conn_id: str, value: str) -> ConnectionInfo:
    """`AIRFLOW_CONN_<ID>` in either of Airflow's forms (JSON or URI), parsed without importing Airflow."""
    if value.lstrip().startswith("{"):
        data = json.loads(value)
        extra = data.get("extra") or {}
        return ConnectionInfo(
            conn_id,
            host=data.get("host") or "",
            port=data.get("port"),
            login=data.get("login") or "",
            password=data.get("password") or "",
            schema=data.get("schema") or "",
            extra=json.loads(extra) if isinstance(extra, str) else extra,
            uri=_uri_from_json(data),
        )
    parts = urlsplit(value)
    return ConnectionInfo(
        conn_id,
        host=unquote(parts.hostname or ""),
        port=parts.port,
        login=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        schema=unquote(parts.path.lstrip("/")),
        extra=dict(parse_qsl(parts.query)),
        uri=value,
    )


def _uri_from_json(data: dict) -> str:
    """The URI of a connection given in Airflow's JSON form (what SQLAlchemy needs for `segmail_db`);
    empty without a `conn_type`, which names the URI scheme."""
    if not data.get("conn_type"):
        return ""
    credentials = quote(data.get("login") or "", safe="")
    if data.get("password"):
        credentials += ":" + quote(data["password"], safe="")
    netloc = (credentials + "@" if credentials else "") + (data.get("host") or "")
    if data.get("port"):
        netloc += f":{data['port']}"
    return f"{data['conn_type'].replace('_', '-')}://{netloc}/{quote(data.get('schema') or '', safe='')}"


def airflow_knows_more() -> bool:
    """Whether Airflow could find a connection that is not in `AIRFLOW_CONN_*`: in an Airflow process
    (already imported: tasks, api-server, scheduler), a process Airflow treats as a server (metadata
    database), or with an external secrets backend. Elsewhere, e.g. in the `segmail` command, Airflow
    too reads connections from the environment only, so importing it (about 3 s) would find nothing."""
    if "airflow" in sys.modules or os.environ.get("_AIRFLOW_PROCESS_CONTEXT") == "server":
        return True
    if any(v for k, v in os.environ.items() if k.startswith("AIRFLOW__SECRETS__BACKEND")):
        return True
    config = configparser.RawConfigParser(strict=False, interpolation=None)
    try:
        config.read(os.environ.get("AIRFLOW_CONFIG") or current().airflow_home / "airflow.cfg", "utf-8")
    except (OSError, configparser.Error):
        return True  # a configuration we cannot read: let Airflow decide
    return bool(config.get("secrets", "backend", fallback="").strip())


def connection(conn_id: str, *, use_airflow: bool = True) -> ConnectionInfo | None:
    """An Airflow connection: from `AIRFLOW_CONN_<ID>` without importing Airflow (fast, and all the
    public app may use), else through Airflow's secrets backends when they could know more than the
    environment (`airflow_knows_more`); None when nobody knows it."""
    if value := os.environ.get(f"AIRFLOW_CONN_{conn_id.upper()}"):
        return _from_env_value(conn_id, value)
    if not use_airflow or not airflow_knows_more():
        return None
    try:
        from airflow.sdk import Connection

        found = Connection.get(conn_id)
    except Exception:  # no Airflow context, or no such connection
        return None
    return ConnectionInfo(
        conn_id,
        host=found.host or "",
        port=found.port,
        login=found.login or "",
        password=found.password or "",
        schema=found.schema or "",
        extra=found.extra_dejson,
        uri=found.get_uri(),
    )


def signing_keys(*, use_airflow: bool = True) -> tuple[bytes, ...]:
    """The signing key first, then previous keys that still verify (key rotation)."""
    info = connection(SIGNING_CONN_ID, use_airflow=use_airflow)
    if info is None or not info.password:
        return ()
    previous = info.extra.get("previous_keys") or []
    if isinstance(previous, str):
        previous = json.loads(previous) if previous.startswith("[") else [previous]
    return tuple(key.encode() for key in [info.password, *previous] if key)


def _airflow_connection_uri(*, use_airflow: bool) -> str | None:
    """The `segmail_db` Airflow connection's URI, if Airflow knows one; None otherwise."""
    info = connection(DB_CONN_ID, use_airflow=use_airflow)
    if info and not info.uri:
        from segmail.errors import SegmailError

        raise SegmailError(
            f"the {DB_CONN_ID} connection needs a conn_type (postgres or sqlite) to name the database"
        )
    return info.uri if info else None


def database_url(*, use_airflow: bool = True, create_home: bool = True) -> str:
    """SEGMAIL_DB_URL, else the Airflow connection `segmail_db`, else SQLite in AIRFLOW_HOME (created
    unless `create_home` is false: the CLI's read commands never create anything)."""
    settings = current()
    if settings.db_url:
        return sqlalchemy_url_from_uri(settings.db_url)
    if uri := _airflow_connection_uri(use_airflow=use_airflow):
        return sqlalchemy_url_from_uri(uri)
    if create_home:
        settings.airflow_home.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{settings.airflow_home / DEFAULT_DB_FILE}"
