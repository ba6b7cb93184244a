"""A salesperson's optional mobile (where an SMS mailing's test message goes), from the CLI, the
segments_admin form and the sample setup, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from segmail.contacts import salespeople
from segmail.errors import SegmailError


def mobiles(engine) -> dict[str, str]:
    return {p["code"]: p["mobile"] for p in salespeople.list_salespeople(engine=engine)}


def test_mobile_is_stored_in_e164_kept_when_not_given_and_removed_when_blank(engine):
    salespeople.add_salesperson(code="mb", name="Maria", email=None, mobile="+43 664 9876543", engine=engine)
    assert mobiles(engine) == {"MB": "+436649876543"}
    salespeople.add_salesperson(code="MB", name="Maria B.", email="maria@example.com", engine=engine)
    assert mobiles(engine) == {"MB": "+436649876543"}  # an update without a mobile keeps it
    salespeople.add_salesperson(code="MB", name="Maria B.", email=None, mobile="", engine=engine)
    assert mobiles(engine) == {"MB": ""}


@pytest.mark.parametrize(
    "mobile",
    [pytest.param("0664 9876543", id="national-form"), pytest.param("+43 1", id="too-short")],
)
def test_an_invalid_mobile_is_refused_naming_the_salesperson(engine, mobile):
    with pytest.raises(SegmailError, match=r"invalid mobile number for salesperson MB: .*international form"):
        salespeople.add_salesperson(code="MB", name="Maria", email=None, mobile=mobile, engine=engine)
    assert mobiles(engine) == {}


def test_cli_and_admin_form_set_it(engine, capsys):
    from segmail.cli.main import main
    from segmail.orchestration.admin_actions import run_action

    assert main(["salespeople", "add", "JD", "--name", "Jane", "--mobile", "+1 416 555 0199"]) == 0
    run_action(action="add_salesperson", salesperson="CL", salesperson_mobile="+33 6 12 34 56 78")
    assert mobiles(engine) == {"CL": "+33612345678", "JD": "+14165550199"}
    assert main(["salespeople", "list"]) == 0
    assert "+14165550199" in capsys.readouterr().out
