"""The approval request's text: counts per language, skip reasons, subjects (an SMS: its text),
test mails and the preview link."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from segmail.mailings import approval
from segmail.mailings.definition import load_mailing

MAILINGS = Path(__file__).resolve().parents[3] / "include" / "mailings"


def facts(mailing, **overrides) -> approval.RunFacts:  # noqa: ANN001
    values = {
        "run_id": 12,
        "mailing": mailing.slug,
        "dry_run": False,
        "to_send": {"de": 120, "en": 300},
        "skipped": 0,
        "skip_reasons": [],
        "excluded_by_language": 0,
        "over_max_recipients": 0,
        "subjects": approval._subjects(mailing),
        "test_mails": [],
        "preview_url": f"/segmail/mailings/{mailing.slug}/preview?run=12",
    }
    return approval.RunFacts(**(values | overrides))


def test_an_email_request():
    mailing = load_mailing(MAILINGS / "newsletter.yaml")
    reasons = [(f"reason {i}", 20 - i) for i in range(12)]
    body = approval.request_body(
        mailing,
        facts(
            mailing,
            skipped=sum(c for _, c in reasons),
            skip_reasons=reasons,
            test_mails=[
                {
                    "recipient": "maria@example.com",
                    "language": "de",
                    "status": "sent",
                    "sent_at": datetime(2026, 11, 27, 9),
                },
                {
                    "recipient": "x@example.com",
                    "language": "en",
                    "status": "failed",
                    "sent_at": datetime(2026, 11, 27, 8),
                },
            ],
        ),
    )
    assert "run #12: **420 mails to send**, 174 skipped." in body
    assert "| de | 120 | Alex, Ihr Newsletter: Frühjahrs-Check & neue Modelle |" in body
    assert "| fr | 0 |" in body  # a language with nobody to send to still shows
    assert "- 20 × reason 0" in body and "- 19 × other reasons" in body  # ten reasons, then the rest
    assert "Test mails in the last 7 days: 1, to maria@example.com (latest 2026-11-27 09:00 UTC)." in body
    assert "[Preview the mails of this run](/segmail/mailings/newsletter/preview?run=12)" in body


@pytest.mark.parametrize("dry_run", [pytest.param(False, id="real"), pytest.param(True, id="dry-run")])
def test_an_sms_request_shows_each_language_s_text(dry_run):
    mailing = load_mailing(MAILINGS / "sms_service_reminder.yaml")
    body = approval.request_body(mailing, facts(mailing, dry_run=dry_run))
    assert "| Language | Mails to send | Message (sample contact) |" in body
    assert "| en | 300 | Hi Alex, your car is due for its seasonal check." in body
    assert ("(dry run: nothing is sent)" in body) is dry_run
    assert "**No test mail** was sent for this mailing in the last 7 days" in body
