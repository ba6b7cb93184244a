"""Settings are read at call time from the environment, with documented defaults and clear errors."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from segmail import settings
from segmail.errors import SegmailError

SEGMAIL_VARIABLES = (
    "SEGMAIL_DB_URL",
    "SEGMAIL_INBOX",
    "SEGMAIL_IMPORT_CRON",
    "SEGMAIL_IMPORT_WORKERS",
    "SEGMAIL_SMTP_POOL",
    "SEGMAIL_SMTP_CONN_ID",
    "SEGMAIL_NOTIFY_FROM",
    "SEGMAIL_UI_PORT",
    "SEGMAIL_SMTP_PORT",
    "SEGMAIL_INCLUDE_DIR",
    "AIRFLOW_CONN_SEGMAIL_DB",
)


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for name in SEGMAIL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_defaults_follow_airflow_home(clean_env):
    config = settings.current()
    assert config.airflow_home == clean_env
    assert config.inbox == str(clean_env / "segmail" / "inbox")
    assert config.import_cron == "0 2 * * *"
    assert config.smtp_pool == "smtp"
    assert config.smtp_conn_id == "smtp_default"
    assert config.notify_from == "segmail@localhost"
    assert config.ui_port == 8080
    assert config.smtp_port == 0
    assert 1 <= config.import_workers <= 4
    assert config.include_dir == Path(settings.__file__).resolve().parents[2] / "include"


def test_values_are_read_at_call_time_not_at_import(clean_env, monkeypatch):
    before = settings.current()
    monkeypatch.setenv("SEGMAIL_SMTP_POOL", "bulk")
    monkeypatch.setenv("SEGMAIL_IMPORT_WORKERS", "0")  # at least one worker
    monkeypatch.setenv("SEGMAIL_IMPORT_CRON", "")  # empty: manual only
    after = settings.current()
    assert before.smtp_pool == "smtp"
    assert after.smtp_pool == "bulk"
    assert after.import_workers == 1
    assert after.import_cron is None


def test_settings_are_frozen(clean_env):
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.current().smtp_pool = "other"  # type: ignore[misc]


def test_a_non_numeric_port_names_the_variable(clean_env, monkeypatch):
    monkeypatch.setenv("SEGMAIL_UI_PORT", "eighty")
    with pytest.raises(ValueError, match="SEGMAIL_UI_PORT must be a whole number, not 'eighty'"):
        settings.current()


@pytest.mark.parametrize(
    ("uri", "url"),
    [
        pytest.param("postgres://u@h/db", "postgresql+psycopg://u@h/db", id="airflow-postgres"),
        pytest.param("postgresql://u@h/db", "postgresql+psycopg://u@h/db", id="postgresql"),
        pytest.param("postgresql+psycopg2://u@h/db", "postgresql+psycopg://u@h/db", id="psycopg2"),
        pytest.param("sqlite:////tmp/x.db", "sqlite:////tmp/x.db", id="sqlite-untouched"),
    ],
)
def test_connection_uris_become_psycopg3_urls(uri, url):
    assert settings.sqlalchemy_url_from_uri(uri) == url


def test_database_url_precedence(clean_env, monkeypatch):
    assert settings.database_url() == f"sqlite:///{clean_env / 'segmail.db'}"
    monkeypatch.setenv("AIRFLOW_CONN_SEGMAIL_DB", "postgres://conn@h/db")
    assert settings.database_url() == "postgresql+psycopg://conn@h/db"
    monkeypatch.setenv("SEGMAIL_DB_URL", "postgresql://env@h/db")
    assert settings.database_url() == "postgresql+psycopg://env@h/db"


def test_connections_from_the_environment_are_read_without_airflow(clean_env, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_SEGMAIL_SIGNING",
        '{"conn_type": "generic", "password": "new-key-0123456789", "extra": {"previous_keys": ["old-key-0123456789"]}}',
    )
    assert settings.signing_keys() == (b"new-key-0123456789", b"old-key-0123456789")
    monkeypatch.setenv("AIRFLOW_CONN_SEGMAIL_SIGNING", "generic://:p%40ss-0123456789abcdef@")
    assert settings.signing_keys() == (b"p@ss-0123456789abcdef",)
    info = settings.connection("segmail_signing")
    assert info is not None and info.password == "p@ss-0123456789abcdef"


def test_no_signing_connection_means_no_keys(clean_env, monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_SEGMAIL_SIGNING", raising=False)
    monkeypatch.setattr(settings, "connection", lambda conn_id, use_airflow=True: None)
    assert settings.signing_keys() == ()


def test_bounce_mailbox_settings_defaults_and_rates(monkeypatch):
    for name in (
        "SEGMAIL_FEEDBACK_CRON",
        "SEGMAIL_FEEDBACK_BATCH_SIZE",
        "SEGMAIL_MAX_BOUNCE_RATE",
        "SEGMAIL_MAX_COMPLAINT_RATE",
        "SEGMAIL_SOFT_BOUNCE_LIMIT",
    ):
        monkeypatch.delenv(name, raising=False)
    config = settings.current()
    assert (config.feedback_cron, config.feedback_batch_size, config.soft_bounce_limit) == (
        "*/15 * * * *",
        200,
        3,
    )
    assert (config.max_bounce_rate, config.max_complaint_rate) == (0.05, 0.003)
    monkeypatch.setenv("SEGMAIL_FEEDBACK_CRON", "")
    monkeypatch.setenv("SEGMAIL_MAX_COMPLAINT_RATE", "0.1%")
    assert settings.current().feedback_cron is None  # only when triggered
    assert settings.current().max_complaint_rate == pytest.approx(0.001)
    monkeypatch.setenv("SEGMAIL_MAX_BOUNCE_RATE", "lots")
    with pytest.raises(ValueError, match="SEGMAIL_MAX_BOUNCE_RATE must be a share such as 0.05 or 5%"):
        settings.current()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(
            '{"conn_type": "postgres", "host": "db", "port": 5432, "login": "segmail", '
            '"password": "p@ss:/", "schema": "segmail"}',
            "postgresql+psycopg://segmail:p%40ss%3A%2F@db:5432/segmail",
            id="json",
        ),
        pytest.param("postgres://conn@h/db", "postgresql+psycopg://conn@h/db", id="uri"),
    ],
)
def test_the_segmail_db_connection_in_either_airflow_form(monkeypatch, value, expected):
    monkeypatch.setenv("AIRFLOW_CONN_SEGMAIL_DB", value)
    assert settings.database_url(use_airflow=False) == expected


def test_a_segmail_db_connection_without_conn_type_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_SEGMAIL_DB", '{"host": "db"}')
    with pytest.raises(SegmailError, match="needs a conn_type"):
        settings.database_url(use_airflow=False)
