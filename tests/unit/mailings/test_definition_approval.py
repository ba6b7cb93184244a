"""The approval, deadline and notify options of a mailing definition: off by default, strict, and
errors that name the field."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from segmail.errors import SegmailError
from segmail.mailings.definition import OnTimeout, load_mailing

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def newsletter(tmp_path) -> Path:
    path = tmp_path / "newsletter.yaml"
    shutil.copy(ROOT / "include" / "mailings" / "newsletter.yaml", path)
    return path


def with_lines(path: Path, lines: str) -> Path:
    path.write_text(path.read_text(encoding="utf-8") + lines, encoding="utf-8")
    return path


def test_off_by_default(newsletter):
    mailing = load_mailing(newsletter)
    assert not mailing.approval.required
    assert mailing.approval.approvers == [] and mailing.approval.timeout_hours == 24
    assert mailing.approval.on_timeout == OnTimeout.REJECT
    assert mailing.deadline_hours is None and mailing.notify == []


def test_the_issue_spelling_loads(newsletter):
    mailing = load_mailing(
        with_lines(
            newsletter,
            "approval: {required: true, approvers: [alice, ' bob ', alice], timeout_hours: 24, on_timeout: reject}\n"
            "deadline_hours: 4\nnotify: [maria@example.com]\n",
        )
    )
    assert mailing.approval.required and mailing.approval.approvers == ["alice", "bob"]
    assert mailing.deadline_hours == 4 and mailing.notify == ["maria@example.com"]


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        pytest.param(
            "approval: {required: yes please}\n",
            "approval.required: Input should be a valid boolean",
            id="required",
        ),
        pytest.param(
            "approval: {on_timeout: send}\n",
            "approval.on_timeout: Input should be 'reject' or 'approve'",
            id="on-timeout",
        ),
        pytest.param(
            "approval: {timeout_hours: 0}\n",
            "approval.timeout_hours: Input should be greater than 0",
            id="timeout",
        ),
        pytest.param(
            "approval: {approvers: ['']}\n",
            "approval.approvers: Value error, an approver cannot be empty",
            id="approver",
        ),
        pytest.param(
            "approval: {required: true, approver: [x]}\n",
            "approval.approver: Extra inputs are not permitted",
            id="typo",
        ),
        pytest.param("deadline_hours: -1\n", "deadline_hours: Input should be greater than 0", id="deadline"),
        pytest.param(
            "notify: [maria]\n", "notify: Value error, not a usable e-mail address: 'maria'", id="notify"
        ),
    ],
)
def test_errors_name_the_file_and_the_field(newsletter, lines, message):
    with pytest.raises(SegmailError) as error:
        load_mailing(with_lines(newsletter, lines))
    assert str(error.value).startswith("newsletter.yaml: ")
    assert message in str(error.value)
