"""Segments and salespeople: lifecycle, bulk assignment and clear errors, against SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from contacts_support import count
from segmail.contacts import salespeople, segments
from segmail.errors import AlreadyExists, NotFound, SegmailError
from segmail.imports.pipeline import import_file
from segmail.orchestration import admin_actions

HEADER = "Country Code,First Name,Last Name,Email,External ID,Segments"


def test_segment_lifecycle_keeps_contacts(engine, write_csv):
    salespeople.add_salesperson(code="jd", name="Jane Doe", email="jane@example.com", engine=engine)
    segments.create_segment(name="Region North", salesperson="JD", description="dealers", engine=engine)
    with pytest.raises(AlreadyExists):
        segments.create_segment(name="region north", engine=engine)
    import_file(
        write_csv(f"{HEADER}\nDE,A,A,a@example.com,E1,Region North\nDE,B,B,b@example.com,E2,\n"),
        engine=engine,
    )
    segments.rename_segment(old="Region North", new="North", engine=engine)
    assert segments.list_segments(engine=engine) == [
        {"name": "North", "salesperson": "JD", "description": "dealers", "members": 1}
    ]

    result = segments.assign_segment(
        name="north", keys=["E2", "A@EXAMPLE.COM", "missing@example.com"], engine=engine
    )
    assert (result.matched, result.changed, result.not_found) == (2, 1, ["missing@example.com"])
    result = segments.assign_segment(name="North", keys=["E1"], remove=True, engine=engine)
    assert (result.matched, result.changed) == (1, 1)

    assert segments.delete_segment(name="North", engine=engine) == 1
    assert count(engine, "segmail_contacts") == 2
    assert count(engine, "segmail_memberships") == 0


@pytest.mark.parametrize(
    ("call", "error"),
    [
        pytest.param(
            lambda e: segments.create_segment(name="A;B", engine=e), SegmailError, id="separator-in-name"
        ),
        pytest.param(
            lambda e: segments.create_segment(name="X", salesperson="NOPE", engine=e),
            NotFound,
            id="unknown-salesperson",
        ),
        pytest.param(
            lambda e: segments.delete_segment(name="ghost", engine=e), NotFound, id="unknown-segment"
        ),
        pytest.param(
            lambda e: salespeople.add_salesperson(code="X", name="X", email="not-an-address", engine=e),
            SegmailError,
            id="bad-salesperson-email",
        ),
        pytest.param(
            lambda e: admin_actions.run_action(action="rename_segment", segment="a", engine=e),
            SegmailError,
            id="form-missing-field",
        ),
    ],
)
def test_mistakes_raise_clear_errors_and_change_nothing(engine, call, error):
    with pytest.raises(error):
        call(engine)
    assert count(engine, "segmail_segments") == 0
