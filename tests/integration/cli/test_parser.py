"""Every `segmail` command line reaches its handler with the arguments it needs."""

from __future__ import annotations

import pytest
from segmail.cli import main as cli


@pytest.mark.parametrize(
    ("argv", "handler", "expected"),
    [
        pytest.param(["db", "upgrade"], cli.cmd_db_upgrade, {}, id="db-upgrade"),
        pytest.param(
            ["import", "c.csv", "--mode", "replace"], cli.cmd_import, {"mode": "replace"}, id="import"
        ),
        pytest.param(["imports", "--format", "json"], cli.cmd_imports, {"format": "json"}, id="imports"),
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
