"""Approval of a frozen run (`approval: {required: true}`): the "dialog on" of the original product.

The run's audience is frozen first, so the approver decides on exactly the mails that would go out:
the request shows the audience per language, the skips with their reasons, the subject per language,
the recent test mails and a link to the preview. The answer may narrow the run (languages, a
recipient cap); mails left out are `skipped` with the reason, never dropped. A rejection (or a
timeout that rejects) skips every pending mail with the reason and marks the run `rejected`, so no
later task, retry or new DAG run for the same interval can send it.

Invariants: one approval row per run; a decision is written once (a retried task finds it and
returns it unchanged); mails are only ever moved from `pending` to `skipped` here.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypedDict

from sqlalchemy import Connection, Engine, bindparam, text

from segmail.mailings.definition import Mailing
from segmail.store.db import default_engine
from segmail.store.models import ApprovalStatus, Channel, DeliveryStatus, RunStatus, TestMailStatus

log = logging.getLogger(__name__)

APPROVE, REJECT = "Approve", "Reject"  # ApprovalOperator's options
TEST_MAIL_DAYS = 7  # how far back the request looks for test mails of the mailing
SKIP_REASONS_SHOWN = 10


class Decision(TypedDict):
    """What crosses XCom from the approval task: the answer, not the audience."""

    mailing_run_id: int
    approved: bool
    decided_by: str | None
    timed_out: bool
    reason: str
    left_out: int


@dataclass(frozen=True, kw_only=True)
class RunFacts:
    """What the approver is shown, read from the frozen run."""

    run_id: int
    mailing: str
    dry_run: bool
    to_send: dict[str, int]  # pending mails per language
    skipped: int
    skip_reasons: list[tuple[str, int]]
    excluded_by_language: int
    over_max_recipients: int
    subjects: dict[str, str]
    test_mails: list[dict]
    preview_url: str


# ---------------------------------------------------------------- the request


def _is_sms(mailing: Mailing) -> bool:
    return getattr(mailing, "channel", Channel.EMAIL) == Channel.SMS


def _sample_line(mailing: Mailing, language: str) -> str:
    """A language's subject (an SMS: its text) for the sample contact, through the send's renderer."""
    from segmail.mailings.render import SAMPLE_CONTACT, compiled_variant, message_context

    contact, segment = dict(SAMPLE_CONTACT), mailing.audience.segments[0]
    if _is_sms(mailing):
        from segmail.sms.render import compile_sms, sms_context

        context = sms_context(contact=contact, segment=segment, salesperson=None, mailing=mailing)
        return compile_sms(mailing, language, sender="-").render(context)
    context = message_context(contact=contact, segment=segment, salesperson=None, mailing=mailing)
    return compiled_variant(mailing, language).render(context)[0]


def _subjects(mailing: Mailing) -> dict[str, str]:
    subjects = {}
    for language, variant in mailing.variants.items():
        try:
            subjects[language] = _sample_line(mailing, language)
        except Exception as exc:  # the request must still be asked; the send task will fail loudly
            template = getattr(variant, "subject", None) or getattr(variant, "text", None) or ""
            subjects[language] = f"{template} (does not render: {exc})"
    return subjects


_PENDING_BY_LANGUAGE = text(
    "SELECT language, COUNT(*) FROM segmail_deliveries WHERE mailing_run_id = :r AND status = :pending"
    " GROUP BY language ORDER BY language"
)
_SKIPPED = text(
    "SELECT reason, COUNT(*) FROM segmail_deliveries WHERE mailing_run_id = :r AND status = :skipped"
    " GROUP BY reason ORDER BY COUNT(*) DESC, reason"
)
_RUN = text("SELECT mailing, dry_run, options FROM segmail_mailing_runs WHERE id = :r")
_TEST_MAILS = text(
    "SELECT recipient, language, status, sent_at FROM segmail_test_mails WHERE mailing = :m"
    " AND sent_at >= :since ORDER BY sent_at DESC, id DESC LIMIT 20"
)


def run_facts(
    mailing: Mailing,
    run_id: int,
    *,
    preview_url: str,
    engine: Engine | None = None,
    now: datetime | None = None,
) -> RunFacts:
    now = now or datetime.now(UTC)
    params = {"r": run_id, "pending": DeliveryStatus.PENDING, "skipped": DeliveryStatus.SKIPPED}
    with (engine or default_engine()).connect() as conn:
        run = conn.execute(_RUN, params).one()
        to_send = dict(conn.execute(_PENDING_BY_LANGUAGE, params).all())
        reasons = [(reason or "", count) for reason, count in conn.execute(_SKIPPED, params)]
        tests = conn.execute(_TEST_MAILS, {"m": mailing.slug, "since": now - timedelta(days=TEST_MAIL_DAYS)})
        test_mails = [dict(t._mapping) for t in tests]
    options = json.loads(run.options or "{}")
    return RunFacts(
        run_id=run_id,
        mailing=run.mailing,
        dry_run=bool(run.dry_run),
        to_send=to_send,
        skipped=sum(count for _, count in reasons),
        skip_reasons=reasons,
        excluded_by_language=options.get("excluded_by_language", 0),
        over_max_recipients=options.get("over_max_recipients", 0),
        subjects=_subjects(mailing),
        test_mails=test_mails,
        preview_url=preview_url,
    )


def _md(value: object) -> str:
    """A value safe inside a Markdown table cell."""
    return str(value).replace("|", "\\|").replace("\n", " ")


def request_body(mailing: Mailing, facts: RunFacts) -> str:
    """The Markdown the approver reads in Required Actions (and, as HTML, in the e-mail)."""
    total = sum(facts.to_send.values())
    lines = [
        f"**{_md(mailing.name)}**, run #{facts.run_id}{' (dry run: nothing is sent)' if facts.dry_run else ''}:"
        f" **{total} mails to send**, {facts.skipped} skipped.",
        "",
        f"| Language | Mails to send | {'Message' if _is_sms(mailing) else 'Subject'} (sample contact) |",
        "|---|---:|---|",
    ]
    languages = sorted(set(mailing.variants) | set(facts.to_send))
    lines += [
        f"| {lang} | {facts.to_send.get(lang, 0)} | {_md(facts.subjects.get(lang, '—'))} |"
        for lang in languages
    ]
    lines += ["", f"**Skipped: {facts.skipped}**", ""]
    shown = facts.skip_reasons[:SKIP_REASONS_SHOWN]
    lines += [f"- {count} × {_md(reason)}" for reason, count in shown] or ["- none"]
    if len(facts.skip_reasons) > len(shown):
        lines.append(f"- {sum(c for _, c in facts.skip_reasons[len(shown) :])} × other reasons")
    if facts.excluded_by_language or facts.over_max_recipients:
        lines.append(
            f"- not in the run: {facts.excluded_by_language} by the language choice,"
            f" {facts.over_max_recipients} over the recipient cap"
        )
    lines += ["", _test_mail_line(facts), "", f"[Preview the mails of this run]({facts.preview_url})", ""]
    lines.append(
        "Approving may narrow the run: contacts of languages you deselect, and those beyond the recipient"
        " cap (0 = no cap), are skipped with that reason."
    )
    return "\n".join(lines)


def _test_mail_line(facts: RunFacts) -> str:
    sent = [t for t in facts.test_mails if t["status"] == TestMailStatus.SENT]
    if not sent:
        return (
            f"**No test mail** was sent for this mailing in the last {TEST_MAIL_DAYS} days"
            " (the `mailing_test_mail` DAG sends one)."
        )
    latest = sent[0]["sent_at"]
    if isinstance(latest, str):  # SQLite hands back text
        latest = datetime.fromisoformat(latest)
    recipients = ", ".join(dict.fromkeys(t["recipient"] for t in sent))
    return (
        f"Test mails in the last {TEST_MAIL_DAYS} days: {len(sent)}, to {_md(recipients)}"
        f" (latest {latest:%Y-%m-%d %H:%M} UTC)."
    )


# ---------------------------------------------------------------- the answer

_APPROVAL = text(
    "SELECT status, decided_by, timed_out, reason, changes FROM segmail_approvals WHERE mailing_run_id = :r"
)
_INSERT_REQUEST = text(
    "INSERT INTO segmail_approvals (mailing_run_id, status, requested_at, approvers, timed_out)"
    " VALUES (:r, :requested, :now, :approvers, :no) ON CONFLICT (mailing_run_id) DO NOTHING"
)
_DECIDE = text(
    "UPDATE segmail_approvals SET status = :status, decided_at = :now, decided_by = :by, timed_out = :timed_out,"
    " reason = :reason, changes = :changes WHERE mailing_run_id = :r AND status = :requested"
)
_CHANGES = text("UPDATE segmail_approvals SET changes = :changes WHERE mailing_run_id = :r")
_SKIP_PENDING = text(
    "UPDATE segmail_deliveries SET status = :skipped, reason = :reason, updated_at = :now"
    " WHERE mailing_run_id = :r AND status = :pending"
)
_SKIP_LANGUAGES = text(
    "UPDATE segmail_deliveries SET status = :skipped, reason = :reason, updated_at = :now"
    " WHERE mailing_run_id = :r AND status = :pending AND language NOT IN :keep"
).bindparams(bindparam("keep", expanding=True))
_SKIP_OVER_CAP = text(
    "UPDATE segmail_deliveries SET status = :skipped, reason = :reason, updated_at = :now"
    " WHERE mailing_run_id = :r AND status = :pending AND id NOT IN"
    " (SELECT id FROM segmail_deliveries WHERE mailing_run_id = :r AND status = :pending ORDER BY id LIMIT :cap)"
)
_REJECT_RUN = text("UPDATE segmail_mailing_runs SET status = :rejected, finished_at = :now WHERE id = :r")


def record_request(
    run_id: int, *, approvers: list[str], engine: Engine | None = None, now: datetime | None = None
) -> None:
    """The request row (kept as it is when a retried task asks again)."""
    with (engine or default_engine()).begin() as conn:
        conn.execute(
            _INSERT_REQUEST,
            {
                "r": run_id,
                "requested": ApprovalStatus.REQUESTED,
                "now": now or datetime.now(UTC),
                "approvers": json.dumps(approvers),
                "no": False,
            },
        )


@dataclass(frozen=True, kw_only=True)
class Answer:
    """A response from Required Actions (or the timeout's defaults)."""

    approved: bool
    decided_by: str | None
    timed_out: bool
    languages: list[str] | None = None  # None: keep every language
    max_recipients: int | None = None  # None or 0: no cap
    timeout_hours: float = 0


def _reason(answer: Answer) -> str:
    if answer.timed_out:
        verdict = "approved" if answer.approved else "rejected"
        return f"no answer within {answer.timeout_hours:g} h: {verdict} by the timeout rule"
    return f"{'approved' if answer.approved else 'rejected'} by {answer.decided_by or 'an unknown user'}"


def _narrow(conn: Connection, run_id: int, answer: Answer, params: dict) -> tuple[int, dict]:
    """Skip what the approver left out; (mails left out, the changes as stored)."""
    left_out, changes = 0, {}
    if answer.languages is not None:
        keep = [lang for lang in answer.languages if lang] or ["\x00none"]
        reason = f"left out at approval: language not selected by {answer.decided_by or 'the timeout rule'}"
        left_out += conn.execute(_SKIP_LANGUAGES, {**params, "keep": keep, "reason": reason}).rowcount
        changes["languages"] = list(answer.languages)
    if answer.max_recipients:
        reason = f"left out at approval: over the recipient cap of {answer.max_recipients}"
        left_out += conn.execute(
            _SKIP_OVER_CAP, {**params, "cap": answer.max_recipients, "reason": reason}
        ).rowcount
        changes["max_recipients"] = answer.max_recipients
    changes["left_out"] = left_out
    return left_out, changes


def decide(
    run_id: int, answer: Answer, *, engine: Engine | None = None, now: datetime | None = None
) -> Decision:
    """Write the answer once and apply it to the frozen run; a second call returns the first decision."""
    now = now or datetime.now(UTC)
    params = {
        "r": run_id,
        "now": now,
        "pending": DeliveryStatus.PENDING,
        "skipped": DeliveryStatus.SKIPPED,
        "requested": ApprovalStatus.REQUESTED,
    }
    reason = _reason(answer)
    decided = {
        "status": ApprovalStatus.APPROVED if answer.approved else ApprovalStatus.REJECTED,
        "by": answer.decided_by,
        "timed_out": answer.timed_out,
        "reason": reason,
        "changes": None,
    }
    with (engine or default_engine()).begin() as conn:
        conn.execute(_INSERT_REQUEST, {**params, "approvers": "[]", "no": False})  # asked elsewhere: no-op
        # Claiming the row first makes a concurrent second answer wait here, then find it decided.
        if not conn.execute(_DECIDE, {**params, **decided}).rowcount:
            return _stored_decision(run_id, conn.execute(_APPROVAL, params).one())
        if answer.approved:
            left_out, changes = _narrow(conn, run_id, answer, params)
        else:
            left_out = conn.execute(_SKIP_PENDING, {**params, "reason": f"not sent: run {reason}"}).rowcount
            changes = {"left_out": left_out}
            conn.execute(_REJECT_RUN, {**params, "rejected": RunStatus.REJECTED})
        conn.execute(_CHANGES, {**params, "changes": json.dumps(changes)})
    log.info("mailing run %s: %s (%d mails left out)", run_id, reason, left_out)
    return Decision(
        mailing_run_id=run_id,
        approved=answer.approved,
        decided_by=answer.decided_by,
        timed_out=answer.timed_out,
        reason=reason,
        left_out=left_out,
    )


def _stored_decision(run_id: int, row) -> Decision:  # noqa: ANN001
    return Decision(
        mailing_run_id=run_id,
        approved=row.status == ApprovalStatus.APPROVED,
        decided_by=row.decided_by,
        timed_out=bool(row.timed_out),
        reason=row.reason or "",
        left_out=json.loads(row.changes or "{}").get("left_out", 0),
    )
