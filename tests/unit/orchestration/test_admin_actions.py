"""The segments_admin form: one list of actions, each dispatched to its own small function."""

from __future__ import annotations

import pytest
from segmail.errors import SegmailError
from segmail.orchestration import admin_actions


def test_the_form_offers_every_action_in_a_stable_order():
    assert admin_actions.ADMIN_ACTIONS == (
        "list_segments",
        "create_segment",
        "rename_segment",
        "delete_segment",
        "assign",
        "unassign",
        "set_segment_salesperson",
        "add_salesperson",
        "list_salespeople",
    )


@pytest.mark.parametrize(
    ("form", "message"),
    [
        pytest.param(
            {"action": "explode"}, "unknown action 'explode'; choose one of list_segments, ", id="unknown"
        ),
        pytest.param({"action": "create_segment", "segment": "  "}, "needs a segment name", id="blank-name"),
        pytest.param({"action": "rename_segment", "segment": "A"}, "needs a new name", id="no-new-name"),
        pytest.param(
            {"action": "assign", "segment": "A"}, "needs keys (external IDs or e-mails)", id="no-keys"
        ),
        pytest.param({"action": "add_salesperson"}, "needs a salesperson code", id="no-code"),
    ],
)
def test_mistakes_in_the_form_are_named_before_anything_is_touched(form, message):
    with pytest.raises(SegmailError, match=message.replace("(", r"\(").replace(")", r"\)")):
        admin_actions.run_action(**form)
