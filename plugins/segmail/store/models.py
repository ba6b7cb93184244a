"""segmail's own tables, prefixed `segmail_` so they can share a database with Airflow's."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class DeliveryStatus(StrEnum):
    """One mail of a run. Only `pending` rows are ever sent; every other status is final, except
    that a `sent` mail becomes `bounced` when a hard bounce for it is read from the bounce mailbox."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"
    BOUNCED = "bounced"
    # SMS delivery reports (segmail.sms.reports): a `sent` message becomes `delivered` or `expired`,
    # or `failed` with the report's reason.
    DELIVERED = "delivered"
    EXPIRED = "expired"


class Channel(StrEnum):
    """How a mailing reaches its contacts: e-mail to their address or SMS to their mobile."""

    EMAIL = "email"
    SMS = "sms"


class BounceKind(StrEnum):
    """What came back for a sent mail: `hard` (5.x.x, the address is suppressed at once) or `soft`
    (4.x.x or delayed; the address is suppressed after SEGMAIL_SOFT_BOUNCE_LIMIT in a row)."""

    HARD = "hard"
    SOFT = "soft"


class FeedbackOutcome(StrEnum):
    """What reading one report from the bounce mailbox did."""

    APPLIED = "applied"  # matched a delivery; its effects are recorded
    UNMATCHED = "unmatched"  # a bounce, complaint or unsubscribe that names no delivery of ours
    IGNORED = "ignored"  # auto-reply, unrecognised, a test mail's token: nothing to do


class RunStatus(StrEnum):
    """A mailing run: `frozen` once its audience is fixed, `sending` once batches are planned;
    `skipped` for a scheduled run that started too late (no audience, no mail; the reason in options);
    `rejected` when its approval said no or timed out (every mail skipped; who and why in
    segmail_approvals), which no later step changes."""

    FROZEN = "frozen"
    SENDING = "sending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    REJECTED = "rejected"  # not approved (an approver said no, or the timeout): nothing sent


class ApprovalStatus(StrEnum):
    """A run's approval request (mailings with `approval: {required: true}`)."""

    REQUESTED = "requested"
    APPROVED = "approved"
    REJECTED = "rejected"


class ImportStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    REJECTED = "rejected"
    FAILED = "failed"


class IssueSeverity(StrEnum):
    ERROR = "error"
    DUPLICATE = "duplicate"
    WARNING = "warning"


class TestMailStatus(StrEnum):
    __test__ = False  # not a pytest class

    SENT = "sent"
    FAILED = "failed"


class OptOutSource(StrEnum):
    """Where an opt-out or a suppression came from (GUIDE §2: kept with when and which run)."""

    IMPORT = "import"
    CLI = "cli"
    ONE_CLICK = "one-click"
    UNSUBSCRIBE_PAGE = "unsubscribe page"
    MAILTO = "mailto"
    COMPLAINT = "complaint"
    HARD_BOUNCE = "hard bounce"
    SOFT_BOUNCES = "soft bounces"
    SMTP_REJECTION = "smtp rejection"
    MANUAL = "manual"
    SMS_STOP = "sms stop"  # an inbound STOP (or a localized stop word) from the number


class ActivityKind(StrEnum):
    MAILING = "mailing"
    UNSUBSCRIBE = "unsubscribe"
    BOUNCE = "bounce"  # a hard bounce (at send time or read from the bounce mailbox)
    SOFT_BOUNCE = "soft bounce"
    COMPLAINT = "complaint"
    SMS = "sms"  # an SMS of a run was sent (or failed) to the contact's mobile
    SMS_REPORT = "sms report"  # the gateway's delivery report: delivered, failed or expired
    SMS_OPT_OUT = "sms opt-out"  # the contact's number opted out of SMS (STOP, import, CLI)
    SMS_REPLY = "sms reply"  # a message from the contact's number that is not a stop word


def key_string(length: int) -> String:
    """A matching key (External ID, e-mail key, E.164 number): compared for equality only, so on
    PostgreSQL it is compared byte by byte (collation "C") rather than by the language's rules,
    which made building its index after a million-row import about 1.5x slower (migration 0012)."""
    return String(length).with_variant(String(length, collation="C"), "postgresql")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Salesperson(Base):
    __tablename__ = "segmail_salespeople"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(50), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    mobile_e164: Mapped[str | None] = mapped_column(String(20))  # where an SMS mailing's test message goes
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Segment(Base):
    __tablename__ = "segmail_segments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # Lower-cased name: imports and commands find segments case-insensitively.
    name_key: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    salesperson_id: Mapped[int | None] = mapped_column(
        ForeignKey("segmail_salespeople.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Contact(Base):
    __tablename__ = "segmail_contacts"
    __table_args__ = (
        Index("ix_segmail_contacts_email_key", "email_key"),
        # Matching by Country Code + Mobile Number and SMS opt-outs (they belong to the number) both
        # go through the number: an E.164 number carries its country (migration 0010).
        Index("ix_segmail_contacts_mobile_e164", "mobile_e164"),
        # Room in each page for the new version of its rows: a re-import updates them in place
        # (HOT, no new index entries); see migration 0006.
        {"postgresql_with": {"fillfactor": 50}},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    external_id: Mapped[str | None] = mapped_column(key_string(200), unique=True)
    email: Mapped[str | None] = mapped_column(String(320))
    # Lower-cased e-mail for matching; not unique: two contacts may share an address.
    email_key: Mapped[str | None] = mapped_column(key_string(320))
    country_code: Mapped[str] = mapped_column(String(2))
    mobile_e164: Mapped[str | None] = mapped_column(key_string(20))
    first_name: Mapped[str] = mapped_column(String(200))
    last_name: Mapped[str] = mapped_column(String(200))
    account_number: Mapped[str | None] = mapped_column(String(100))
    organization: Mapped[str | None] = mapped_column(String(300))
    language: Mapped[str | None] = mapped_column(String(35))
    salesperson_code: Mapped[str | None] = mapped_column(String(50))
    email_opt_out: Mapped[bool] = mapped_column(Boolean, default=False)
    email_opt_out_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    email_opt_out_source: Mapped[str | None] = mapped_column(String(200))
    email_opt_out_run_id: Mapped[int | None] = mapped_column(Integer)  # the mailing run that caused it
    # SMS opt-out, separate from the e-mail one: an e-mail unsubscribe does not stop SMS, nor the reverse.
    sms_opt_out: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    sms_opt_out_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sms_opt_out_source: Mapped[str | None] = mapped_column(String(200))  # OptOutSource, or the import's
    sms_opt_out_run_id: Mapped[int | None] = mapped_column(Integer)  # the mailing run that caused it
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_import_id: Mapped[int | None] = mapped_column(Integer)


class Membership(Base):
    """A contact in a segment. No foreign keys (checking them row by row made large imports slow):
    imports insert memberships only for contacts they write and segments they lock
    (segmail.imports.apply), and deleting a segment deletes its memberships
    (segmail.contacts.segments.delete_segment)."""

    __tablename__ = "segmail_memberships"
    __table_args__ = (Index("ix_segmail_memberships_segment_id", "segment_id"),)

    contact_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    segment_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)


class ImportRun(Base):
    __tablename__ = "segmail_import_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    file_name: Mapped[str] = mapped_column(String(500))
    file_sha256: Mapped[str] = mapped_column(String(64), index=True)
    mode: Mapped[str] = mapped_column(String(10))
    source: Mapped[str] = mapped_column(String(50))  # "cli", "dag:<run_id>", ...
    # running -> succeeded | rejected (file unreadable, nothing applied) | failed (error, rolled back)
    status: Mapped[str] = mapped_column(String(20))
    error: Mapped[str | None] = mapped_column(Text)
    rows: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    duplicates: Mapped[int] = mapped_column(Integer, default=0)
    warnings: Mapped[int] = mapped_column(Integer, default=0)
    report_path: Mapped[str | None] = mapped_column(String(1000))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ImportIssue(Base):
    """A rejected row (severity `error`), an earlier duplicate row, or a warning on a row that landed."""

    __tablename__ = "segmail_import_issues"
    __table_args__ = (Index("ix_segmail_import_issues_run_line", "import_run_id", "line_no"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    import_run_id: Mapped[int] = mapped_column(ForeignKey("segmail_import_runs.id", ondelete="CASCADE"))
    line_no: Mapped[int | None] = mapped_column(Integer)
    column_name: Mapped[str | None] = mapped_column(String(100))
    value: Mapped[str | None] = mapped_column(Text)
    severity: Mapped[str] = mapped_column(String(10))  # error | duplicate | warning
    reason: Mapped[str] = mapped_column(Text)


class MailingRun(Base):
    """One run of a mailing; keyed by the Airflow DAG run so a cleared or retried run finds its own,
    and, when the DAG run has a logical date (scheduled runs, `airflow dags test <date>`), by
    (mailing, logical date) too: a DAG run deleted and created again for that interval finds it."""

    __tablename__ = "segmail_mailing_runs"
    __table_args__ = (UniqueConstraint("mailing", "dag_run_id"), UniqueConstraint("mailing", "logical_date"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mailing: Mapped[str] = mapped_column(String(100), index=True)
    dag_run_id: Mapped[str] = mapped_column(String(250))
    status: Mapped[str] = mapped_column(String(20))  # frozen | sending | succeeded | failed
    channel: Mapped[str] = mapped_column(
        String(10), default=Channel.EMAIL, server_default=Channel.EMAIL.value
    )
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    options: Mapped[str | None] = mapped_column(Text)  # JSON: languages, max recipients, excluded counts
    totals: Mapped[str | None] = mapped_column(Text)  # JSON: counts per status and language
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The interval this run sends for; NULL for dry runs and runs without one (asset-triggered, manual)
    logical_date: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class MailingApproval(Base):
    """The approval asked for one run and its answer: who decided, when, why, and what they narrowed
    (languages, recipient cap). `decided_by` is empty when the timeout decided."""

    __tablename__ = "segmail_approvals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mailing_run_id: Mapped[int] = mapped_column(
        ForeignKey("segmail_mailing_runs.id", ondelete="CASCADE"), unique=True
    )
    status: Mapped[str] = mapped_column(String(10))  # ApprovalStatus
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    approvers: Mapped[str | None] = mapped_column(Text)  # JSON list of user names; empty: anyone
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decided_by: Mapped[str | None] = mapped_column(String(200))
    timed_out: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str | None] = mapped_column(Text)
    changes: Mapped[str | None] = mapped_column(Text)  # JSON: languages, max_recipients, mails left out


class DeliveryBatch(Base):
    __tablename__ = "segmail_delivery_batches"
    __table_args__ = (UniqueConstraint("mailing_run_id", "batch_no"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mailing_run_id: Mapped[int] = mapped_column(ForeignKey("segmail_mailing_runs.id", ondelete="CASCADE"))
    batch_no: Mapped[int] = mapped_column(Integer)
    language: Mapped[str] = mapped_column(String(35))
    size: Mapped[int] = mapped_column(Integer)


class Delivery(Base):
    """One mail of a run: unique per (run, contact), so a run can never mail a contact twice."""

    __tablename__ = "segmail_deliveries"
    __table_args__ = (
        UniqueConstraint("mailing_run_id", "contact_id"),  # also the index of a run's deliveries
        Index("ix_segmail_deliveries_batch_id", "batch_id"),
        # No index holds a column that an outcome changes, and each page keeps room for its rows'
        # new versions: PostgreSQL writes a mail's outcome in place (HOT); see migration 0011.
        {"postgresql_with": {"fillfactor": 50}},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mailing_run_id: Mapped[int] = mapped_column(ForeignKey("segmail_mailing_runs.id", ondelete="CASCADE"))
    contact_id: Mapped[int] = mapped_column(Integer, index=True)
    segment_id: Mapped[int | None] = mapped_column(Integer)  # the audience segment the contact came through
    batch_id: Mapped[int | None] = mapped_column(
        ForeignKey("segmail_delivery_batches.id", ondelete="SET NULL")
    )
    email: Mapped[str | None] = mapped_column(String(320))
    mobile_e164: Mapped[str | None] = mapped_column(String(20))  # SMS rows: the number, frozen with the run
    language: Mapped[str | None] = mapped_column(String(35))
    status: Mapped[str] = mapped_column(String(10))  # DeliveryStatus
    reason: Mapped[str | None] = mapped_column(Text)
    # The server's last code and reply: SMTP's for e-mail, the SMS gateway's for SMS (Kannel: the
    # HTTP status and body of sendsms).
    smtp_code: Mapped[int | None] = mapped_column(Integer)
    smtp_response: Mapped[str | None] = mapped_column(Text)
    message_id: Mapped[str | None] = mapped_column(String(250))
    sms_parts: Mapped[int | None] = mapped_column(Integer)  # SMS rows: the parts the message was sent in
    reported_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # SMS: last delivery report
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    unsubscribed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    bounce: Mapped[str | None] = mapped_column(String(10))  # BounceKind, from the bounce mailbox
    bounced_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    complained_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ActivityLog(Base):
    """What colleagues see on a contact: who got which mail, when, from whom, and what came back.

    One row per (run, contact, kind): a mail, then at most one unsubscribe, bounce or complaint."""

    __tablename__ = "segmail_activity_log"
    __table_args__ = (UniqueConstraint("mailing_run_id", "contact_id", "kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contact_id: Mapped[int] = mapped_column(Integer, index=True)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    kind: Mapped[str] = mapped_column(String(20))  # ActivityKind
    mailing: Mapped[str | None] = mapped_column(String(100))
    mailing_run_id: Mapped[int | None] = mapped_column(
        ForeignKey("segmail_mailing_runs.id", ondelete="CASCADE")
    )
    subject: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[str | None] = mapped_column(Text)  # e.g. the source of an opt-out, a bounce's reason
    language: Mapped[str | None] = mapped_column(String(35))
    salesperson_code: Mapped[str | None] = mapped_column(String(50))
    message_id: Mapped[str | None] = mapped_column(String(250))


class SentTestMail(Base):
    """Test sends, kept apart from contacts' deliveries and activity."""

    __tablename__ = "segmail_test_mails"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mailing: Mapped[str] = mapped_column(String(100))
    language: Mapped[str] = mapped_column(String(35))
    recipient: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(Text)
    message_id: Mapped[str | None] = mapped_column(String(250))
    status: Mapped[str] = mapped_column(String(10))
    error: Mapped[str | None] = mapped_column(Text)
    dag_run_id: Mapped[str | None] = mapped_column(String(250))
    sent_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Suppression(Base):
    """An address segmail never mails again: opted out, hard-bounced or complained. Per address
    (lower-cased), so it holds for every contact sharing it; imports never remove one."""

    __tablename__ = "segmail_suppressions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    address_key: Mapped[str] = mapped_column(String(320), unique=True)
    reason: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(30))  # OptOutSource
    mailing_run_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class FeedbackReport(Base):
    """One message read from the bounce mailbox: the evidence (never deleted) and the key that
    makes reading it again change nothing (unique per the report's own Message-ID)."""

    __tablename__ = "segmail_feedback_reports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    report_key: Mapped[str] = mapped_column(String(250), unique=True)  # Message-ID, or sha256:<hex>
    kind: Mapped[str] = mapped_column(String(20))  # feedback.reports.ReportKind
    outcome: Mapped[str] = mapped_column(String(20))  # FeedbackOutcome
    severity: Mapped[str | None] = mapped_column(String(10))  # BounceKind, for bounces
    delivery_id: Mapped[int | None] = mapped_column(Integer)
    mailing_run_id: Mapped[int | None] = mapped_column(Integer, index=True)
    contact_id: Mapped[int | None] = mapped_column(Integer)
    address: Mapped[str | None] = mapped_column(String(320))  # the recipient it is about
    status_code: Mapped[str | None] = mapped_column(String(20))  # e.g. 5.1.1
    action: Mapped[str | None] = mapped_column(String(20))  # failed | delayed
    diagnostic: Mapped[str | None] = mapped_column(Text)
    detector: Mapped[str | None] = mapped_column(String(60))  # rfc3464, rfc5965, flufl.bounce:Qmail, ...
    confidence: Mapped[str | None] = mapped_column(String(10))
    sender: Mapped[str | None] = mapped_column(String(320))
    subject: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[str | None] = mapped_column(Text)  # what was done, or why nothing was
    reported_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # the report's Date
    processed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SendBudget(Base):
    """Mails counted against one cap (a mailing's or a connection's) in one hour or day; rows are
    reserved under a lock before mails go out (segmail.throttle.budget states the invariant)."""

    __tablename__ = "segmail_send_budgets"

    scope: Mapped[str] = mapped_column(String(200), primary_key=True)  # mailing:<slug>, smtp:<conn id>
    period: Mapped[str] = mapped_column(String(10), primary_key=True)  # throttle.budget.Period
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)  # UTC
    used: Mapped[int] = mapped_column(Integer)  # reserved, sent or in flight; never below what was sent
    cap: Mapped[int] = mapped_column(Integer)  # the cap at the last reservation, for the pages
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
