"""Every `segmail` command line reaches its handler with the arguments it needs."""

from __future__ import annotations

import pytest
from segmail.cli import main as cli
from segmail.cli.feedback import cmd_serve_public, cmd_suppressions
from segmail.cli.imports import cmd_import, cmd_imports


@pytest.mark.parametrize(
    ("argv", "handler", "expected"),
    [
        pytest.param(["db", "upgrade"], cli.cmd_db_upgrade, {}, id="db-upgrade"),
        pytest.param(["-v", "imports"], cmd_imports, {"verbose": True}, id="verbose"),
        pytest.param(["import", "c.csv", "--mode", "replace"], cmd_import, {"mode": "replace"}, id="import"),
        pytest.param(["imports", "--format", "json"], cmd_imports, {"format": "json"}, id="imports"),
        pytest.param(
            ["salespeople", "add", "JD", "--name", "Jane"], cli.cmd_salespeople, {"code": "JD"}, id="sp-add"
        ),
        pytest.param(["salespeople", "list"], cli.cmd_salespeople, {"action": "list"}, id="sp-list"),
        pytest.param(
            ["segments", "rename", "A", "B"], cli.cmd_segments, {"old": "A", "new": "B"}, id="seg-rename"
        ),
        pytest.param(
            ["segments", "unassign", "A", "--file", "k"], cli.cmd_segments, {"file": "k"}, id="seg-unassign"
        ),
        pytest.param(["contacts", "opt-out", "E1"], cli.cmd_contacts, {"source": "cli"}, id="opt-out"),
        pytest.param(
            ["contacts", "export", "-o", "x.csv"], cli.cmd_contacts, {"output": "x.csv"}, id="export"
        ),
        pytest.param(
            ["mailings", "validate"], cli.cmd_mailings, {"action": "validate"}, id="mailings-validate"
        ),
        pytest.param(["status", "newsletter", "--run", "3"], cli.cmd_status, {"run": 3}, id="status"),
        pytest.param(
            ["mailings", "validate", "--dns"], cli.cmd_mailings, {"dns": True}, id="mailings-validate-dns"
        ),
        pytest.param(
            ["suppressions", "list", "--format", "json", "--limit", "5"],
            cmd_suppressions,
            {"action": "list", "format": "json", "limit": 5},
            id="suppressions-list",
        ),
        pytest.param(
            ["suppressions", "add", "a@example.com", "--reason", "phone"],
            cmd_suppressions,
            {"address": "a@example.com", "reason": "phone"},
            id="suppressions-add",
        ),
        pytest.param(
            ["suppressions", "remove", "a@example.com"],
            cmd_suppressions,
            {"action": "remove", "address": "a@example.com"},
            id="suppressions-remove",
        ),
        pytest.param(["serve-public"], cmd_serve_public, {"host": None, "port": None}, id="serve-public"),
        pytest.param(
            ["serve-public", "--host", "0.0.0.0", "--port", "8090"],
            cmd_serve_public,
            {"host": "0.0.0.0", "port": 8090},
            id="serve-public-host-port",
        ),
    ],
)
def test_command_lines_reach_their_handler(argv, handler, expected):
    args = cli.build_parser().parse_args(argv)
    assert args.func is handler
    assert expected.items() <= vars(args).items()


def test_a_command_without_its_action_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exited:
        cli.build_parser().parse_args(["segments"])
    assert exited.value.code == 2
    assert "segments: error: the following arguments are required: action" in capsys.readouterr().err


def test_the_command_starts_without_loading_the_heavy_parts():
    """`segmail --help` and argument parsing import neither Airflow, uvicorn nor the database layer."""
    import subprocess
    import sys

    code = (
        "import sys; from segmail.cli.main import build_parser; build_parser().parse_args(['serve-public']);"
        "heavy = [m for m in ('airflow', 'uvicorn', 'sqlalchemy', 'fastapi', 'pandas') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""
