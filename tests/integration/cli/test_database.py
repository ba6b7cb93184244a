"""Which database `segmail` opens: the local setup's `.airflow/` when AIRFLOW_HOME is unset, never a
new empty database on a read command, and no Airflow import to find it."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from segmail.cli import database
from segmail.cli.main import main

READ_COMMANDS = [
    pytest.param(["status", "newsletter"], id="status"),
    pytest.param(["status", "--tests"], id="status-tests"),
    pytest.param(["imports"], id="imports"),
    pytest.param(["segments", "list"], id="segments-list"),
    pytest.param(["salespeople", "list"], id="salespeople-list"),
    pytest.param(["contacts", "export", "-o", "out.csv"], id="contacts-export"),
    pytest.param(["suppressions", "list"], id="suppressions-list"),
]
DB_VARIABLES = ("AIRFLOW_HOME", "SEGMAIL_DB_URL", "AIRFLOW_CONN_SEGMAIL_DB")


@pytest.fixture
def no_database_settings(monkeypatch, tmp_path):
    """No AIRFLOW_HOME or database URL, the current directory a fresh folder, no checkout to fall back on."""
    from segmail.store.db import default_engine

    for name in DB_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(database, "_checkout", lambda: None)
    default_engine.cache_clear()
    yield tmp_path
    default_engine.cache_clear()


def _migrated_home(folder: Path) -> Path:
    from segmail.store.db import make_engine
    from segmail.store.migrate import upgrade

    folder.mkdir(parents=True)
    engine = make_engine(f"sqlite:///{folder / 'segmail.db'}")
    upgrade(engine)
    engine.dispose()
    return folder


def test_the_local_setup_in_the_current_directory_is_used(no_database_settings, capsys):
    home = _migrated_home(no_database_settings / ".airflow")
    assert database.choose_airflow_home() == ".airflow/ in the current directory"
    assert os.environ["AIRFLOW_HOME"] == str(home)
    assert main(["segments", "list"]) == 0
    assert capsys.readouterr().out.strip() == "(none)"


def test_else_the_checkout_segmail_is_installed_from(no_database_settings, monkeypatch, tmp_path):
    checkout = tmp_path / "checkout"
    home = _migrated_home(checkout / ".airflow")  # the current directory, tmp_path, has none
    monkeypatch.setattr(database, "_checkout", lambda: checkout)
    assert database.choose_airflow_home() == "the checkout's .airflow/"
    assert os.environ["AIRFLOW_HOME"] == str(home)


def test_an_airflow_home_that_is_set_wins(no_database_settings, monkeypatch):
    _migrated_home(no_database_settings / ".airflow")
    monkeypatch.setenv("AIRFLOW_HOME", str(no_database_settings / "elsewhere"))
    assert database.choose_airflow_home() == "set by AIRFLOW_HOME"
    assert os.environ["AIRFLOW_HOME"] == str(no_database_settings / "elsewhere")


def test_the_checkout_is_where_the_package_is_installed_from():
    assert database._checkout() == Path(__file__).resolve().parents[3]  # these tests run in a checkout


@pytest.mark.parametrize("argv", READ_COMMANDS)
def test_a_read_command_never_creates_a_database(argv, no_database_settings, monkeypatch, capsys):
    monkeypatch.setenv("HOME", str(no_database_settings / "user"))
    home = no_database_settings / "user" / "airflow"
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err == (
        f"error: no segmail database at {home / 'segmail.db'} (AIRFLOW_HOME is unset and there is no "
        ".airflow/ here or in the checkout); run `segmail db upgrade` to create it "
        "(or `make demo` in the checkout for the sample data)\n"
    )
    assert sorted(p.name for p in no_database_settings.iterdir()) == []  # no home, no database, no out.csv


def test_a_database_without_the_schema_is_explained_not_migrated(no_database_settings, monkeypatch, capsys):
    empty = no_database_settings / "empty.db"
    empty.touch()
    monkeypatch.setenv("SEGMAIL_DB_URL", f"sqlite:///{empty}")
    assert main(["imports"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: sqlite:///{empty}: segmail's database schema is at no revision")
    assert err.endswith("run `segmail db upgrade`\n") and err.count("\n") == 1
    with sqlite3.connect(empty) as conn:
        assert conn.execute("SELECT name FROM sqlite_master").fetchall() == []


def test_db_upgrade_creates_the_database(no_database_settings, monkeypatch, capsys):
    monkeypatch.setenv("AIRFLOW_HOME", str(no_database_settings / "new-home"))
    assert main(["db", "upgrade"]) == 0
    assert (no_database_settings / "new-home" / "segmail.db").is_file()


def test_an_unreachable_database_server_is_one_line(no_database_settings, monkeypatch, capsys):
    from segmail.dev.smtpsink import free_port

    monkeypatch.setenv("SEGMAIL_DB_URL", f"postgresql://nobody:secret@127.0.0.1:{free_port()}/segmail")
    assert main(["imports"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        "error: cannot reach the segmail database at postgresql+psycopg://nobody:***@127.0.0.1:"
    )
    assert "secret" not in err and err.count("\n") == 1


_PROBE = """
import sys, time
started = time.perf_counter()
from segmail.cli.main import main
code = main(sys.argv[1:])
print("airflow modules:", sorted(m for m in sys.modules if m == "airflow" or m.startswith("airflow.")))
print(f"seconds: {time.perf_counter() - started:.2f}", file=sys.stderr)
sys.exit(code)
"""


@pytest.mark.parametrize("argv", [["status", "newsletter"], ["imports"], ["segments", "list"]])
def test_commands_find_the_checkout_database_without_importing_airflow(argv, tmp_path):
    """What `make demo` prints at its end, run from the checkout without AIRFLOW_HOME: the demo's
    database, found and read without importing Airflow (which took 3 of 3.8 s)."""
    home = _migrated_home(tmp_path / ".airflow")
    env = {k: v for k, v in os.environ.items() if k not in DB_VARIABLES}
    env["HOME"] = str(tmp_path / "user")
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *argv], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "airflow modules: []"
    assert not (tmp_path / "user").exists()  # not ~/airflow: the database under .airflow/ was read
    assert (home / "segmail.db").is_file()


def test_a_secrets_backend_in_airflow_cfg_makes_segmail_ask_airflow(no_database_settings, monkeypatch):
    from segmail import settings

    home = no_database_settings / "home"
    home.mkdir()
    monkeypatch.setenv("AIRFLOW_HOME", str(home))
    for name in [k for k in os.environ if k.startswith("AIRFLOW__SECRETS__")]:
        monkeypatch.delenv(name)
    monkeypatch.delenv("AIRFLOW_CONFIG", raising=False)
    monkeypatch.delenv("_AIRFLOW_PROCESS_CONTEXT", raising=False)
    monkeypatch.setattr(settings, "sys", SimpleNamespace(modules={}))  # as in a process without Airflow
    assert not settings.airflow_knows_more()
    (home / "airflow.cfg").write_text("[core]\nload_examples = False\n[secrets]\nbackend =\n")
    assert not settings.airflow_knows_more()
    (home / "airflow.cfg").write_text(
        "[secrets]\nbackend = airflow.providers.hashicorp.secrets.vault.Vault\n"
    )
    assert settings.airflow_knows_more()
    (home / "airflow.cfg").unlink()
    monkeypatch.setenv("AIRFLOW__SECRETS__BACKEND", "some.Backend")
    assert settings.airflow_knows_more()
