"""Helpers of the bounce-mailbox tests: a fake mailbox, reports built from the corpus for real
deliveries, the real Postfix + Dovecot fixture, and what the database holds afterwards."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from segmail.feedback.mailbox import Folder
from segmail.feedback.process import FeedbackContext
from segmail.feedback.reports import FeedbackAddresses
from segmail.feedback.tokens import TokenPurpose, TokenSigner
from sqlalchemy import text
from tests_support import TEST_SIGNING_KEY

CORPUS = Path(__file__).resolve().parent / "unit" / "feedback" / "corpus"
BOUNCE_DOMAIN = "bounces.autohaus-demo.example"
MAILTO = "unsubscribe@autohaus-demo.example"  # SEGMAIL_UNSUBSCRIBE_MAILTO in tests/conftest.py
SIGNER = TokenSigner((TEST_SIGNING_KEY,))
CONTEXT = FeedbackContext(FeedbackAddresses(BOUNCE_DOMAIN, "bounces", MAILTO), SIGNER, soft_bounce_limit=3)
CORPUS_VERP = "b.2a.ke5.abcdefghijklmnopqrstuvwxyz"
CORPUS_MAILTO = "u.2a.ke5.bcdefghijklmnopqrstuvwxyza"
CORPUS_RECIPIENT = {
    "postfix_unknown_user.eml": "nobody@recipients.example",
    "postfix_mailbox_full.eml": "full@recipients.example",
    "postfix_delayed.eml": "slow@recipients.example",
    "arf_abuse.eml": "carla@mailbox-provider.example",
    "qmail.eml": "quentin@vintage-isp.example",
}
CORPUS_MESSAGE_ID = {
    "postfix_unknown_user.eml": "<segmail.7.42@autohaus-demo.example>",
    "postfix_mailbox_full.eml": "<segmail.7.43@autohaus-demo.example>",
    "postfix_delayed.eml": "<segmail.7.44@autohaus-demo.example>",
    "arf_abuse.eml": "<segmail.7.51@autohaus-demo.example>",
    "qmail.eml": "<segmail.7.50@autohaus-demo.example>",
}


# ---------------------------------------------------------------- reports for real deliveries


def report_for(
    delivery: dict,
    template: str,
    *,
    token: str | None = None,
    date: str | None = None,
    verp: bool = True,
) -> bytes:
    """A corpus report rewritten for one delivery: its address, its Message-ID, its signed VERP
    token (or `token`, or none with verp=False), a Message-ID of its own and optionally a Date."""
    raw = (CORPUS / template).read_text()
    raw = raw.replace(CORPUS_RECIPIENT[template], delivery["email"])
    raw = raw.replace(CORPUS_MESSAGE_ID[template], delivery["message_id"])
    verp_token = token or SIGNER.sign(TokenPurpose.BOUNCE, delivery["id"])
    raw = raw.replace(f"bounces+{CORPUS_VERP}@", f"bounces+{verp_token}@" if verp else "newsletter@")
    raw = raw.replace(CORPUS_MAILTO, SIGNER.sign(TokenPurpose.UNSUBSCRIBE, delivery["id"]))
    raw = _replace_header(raw, "Message-Id", f"<report-{uuid.uuid4().hex}@reporter.example>")
    if date:
        raw = _replace_header(raw, "Date", date)
    return raw.encode()


def mailto_unsubscribe(delivery: dict, *, purpose: TokenPurpose = TokenPurpose.UNSUBSCRIBE) -> bytes:
    token = SIGNER.sign(purpose, delivery["id"])
    raw = (CORPUS / "mailto_unsubscribe.eml").read_text().replace(CORPUS_MAILTO, token)
    return _replace_header(raw, "Message-ID", f"<unsub-{uuid.uuid4().hex}@mail.example>").encode()


def _replace_header(raw: str, name: str, value: str) -> str:
    head, _, body = raw.partition("\n\n")
    lines = [
        f"{name}: {value}" if line.lower().startswith(name.lower() + ":") else line
        for line in head.split("\n")
    ]
    return "\n".join(lines) + "\n\n" + body


# ---------------------------------------------------------------- a fake mailbox


class FakeMailbox:
    """The `Mailbox` interface over dicts; `fail_moves` makes the next moves fail like a killed task."""

    def __init__(self, messages: list[bytes] = ()) -> None:
        self.inbox: dict[int, bytes] = {}
        self.folders: dict[Folder, dict[int, bytes]] = {folder: {} for folder in Folder}
        self.next_uid = 1
        self.fail_moves = 0
        self.sessions = 0
        for raw in messages:
            self.deliver(raw)

    def deliver(self, raw: bytes) -> None:
        self.inbox[self.next_uid] = raw
        self.next_uid += 1

    def __enter__(self) -> FakeMailbox:
        self.sessions += 1
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def uids(self) -> list[int]:
        return sorted(self.inbox)

    def fetch(self, uids: list[int]) -> dict[int, bytes]:
        return {uid: self.inbox[uid] for uid in uids if uid in self.inbox}

    def move(self, uids: list[int], folder: Folder) -> None:
        if uids and self.fail_moves:
            self.fail_moves -= 1
            raise ConnectionError("killed before the IMAP move")
        for uid in uids:
            self.folders[folder][uid] = self.inbox.pop(uid)

    def put_back(self) -> None:
        """Every moved message into the inbox again (as if restored by hand)."""
        for folder in self.folders.values():
            for raw in folder.values():
                self.deliver(raw)
            folder.clear()


# ---------------------------------------------------------------- the database afterwards


def suppression(engine, address: str) -> dict | None:
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT reason, source, mailing_run_id FROM segmail_suppressions WHERE address_key = :a"),
            {"a": address.lower()},
        ).first()
    return dict(row._mapping) if row else None


def activity(engine, contact_id: int) -> list[tuple]:
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                text(
                    "SELECT kind, mailing_run_id, detail, occurred_at FROM segmail_activity_log"
                    " WHERE contact_id = :c AND kind <> 'mailing' ORDER BY id"
                ),
                {"c": contact_id},
            )
        ]


def snapshot(engine) -> dict[str, list]:
    """Every row of the tables feedback touches (to show that a second reading changes nothing)."""
    tables = (
        "segmail_deliveries",
        "segmail_suppressions",
        "segmail_contacts",
        "segmail_activity_log",
        "segmail_feedback_reports",
    )
    with engine.connect() as conn:
        return {
            t: sorted(map(tuple, conn.execute(text(f"SELECT * FROM {t}")).all()), key=repr) for t in tables
        }


# ---------------------------------------------------------------- real Postfix and Dovecot


@pytest.fixture
def mail_servers(monkeypatch) -> Iterator:
    """Postfix as the relay (bouncing unknown users itself, a full mailbox answering 452 4.2.2) and
    Dovecot serving the bounce Maildir; segmail's SMTP connection, bounce domain and bounce mailbox
    point at them. Under CI=true a machine without them fails instead of skipping."""
    from segmail.dev.mailservers import MailServers, missing

    reason = missing()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    servers = MailServers(
        feedback_domains=(BOUNCE_DOMAIN, MAILTO.partition("@")[2]),
        users=("good", "carla", "dora", "petra"),
        full_users=("full",),
    )
    with servers:
        monkeypatch.setenv("SEGMAIL_BOUNCE_DOMAIN", BOUNCE_DOMAIN)
        monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", servers.smtp_uri)
        monkeypatch.setenv("AIRFLOW_CONN_SEGMAIL_BOUNCES", json.dumps(servers.imap_connection()))
        yield servers
