"""Mailing definitions: one YAML file per mailing in include/mailings/, validated strictly.

The file name is the mailing's slug (and its DAG is `mailing__<slug>`). Errors name the file and
the field, so a typo is found at parse time and by `segmail mailings validate`, not mid-send.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from segmail.errors import NotFound, SegmailError
from segmail.language import choose_language
from segmail.settings import include_dir
from segmail.sms.definition import (
    DEFAULT_GATEWAY_CONN_ID,
    SmsVariant,
    channel_variants,
    check_sender,
    other_channel_field,
)
from segmail.store.models import Channel
from segmail.throttle.window import SendWindow, zone

SLUG = re.compile(r"^[a-z0-9][a-z0-9_]{0,60}$")
_HEADER_SAFE = re.compile(r"^[^\r\n]*$")


class Variant(BaseModel):
    """One language of a mailing: the "mail setup per language code" of the original product."""

    model_config = ConfigDict(extra="forbid")

    subject: str = Field(min_length=1, max_length=500, pattern=_HEADER_SAFE.pattern)
    body: str = Field(description="template path under include/templates/")
    html: bool = True
    from_: str | None = Field(default=None, alias="from", pattern=_HEADER_SAFE.pattern)
    reply_to: str | None = Field(default=None, pattern=_HEADER_SAFE.pattern)
    text_body: str | None = Field(
        default=None, description="optional plain-text template; else made from HTML"
    )
    attachments: list[str] = Field(default_factory=list, description="paths under include/")


class Audience(BaseModel):
    model_config = ConfigDict(extra="forbid")

    segments: list[str] = Field(min_length=1, description="contacts in any of these segments")
    exclude_segments: list[str] = Field(default_factory=list)


class Dkim(BaseModel):
    """DKIM signing in segmail: the key is the password of an Airflow connection, never in the file."""

    model_config = ConfigDict(extra="forbid")

    domain: str = Field(pattern=r"^[A-Za-z0-9.-]+$", description="d=, normally the From domain")
    selector: str = Field(
        pattern=r"^[A-Za-z0-9._-]+$", description="s=, the DNS key is at <s>._domainkey.<d>"
    )
    key_conn_id: str = Field(min_length=1, description="connection whose password is the private key")


class OnTimeout(StrEnum):
    """What an approval nobody answered in time decides."""

    REJECT = "reject"
    APPROVE = "approve"


class Approval(BaseModel):
    """The "dialog on" switch of the original product: a run stops after its audience is frozen and
    waits for a user's answer in Airflow's Required Actions, where languages and the cap can be
    narrowed before anything is sent."""

    model_config = ConfigDict(extra="forbid")

    required: bool = False
    approvers: list[str] = Field(
        default_factory=list, description="Airflow user names; empty: any user allowed to act on the DAG"
    )
    timeout_hours: float = Field(default=24, gt=0, le=24 * 30)
    on_timeout: OnTimeout = OnTimeout.REJECT

    @field_validator("approvers")
    @classmethod
    def _names(cls, approvers: list[str]) -> list[str]:
        names = [a.strip() for a in approvers]
        if any(not n for n in names):
            raise ValueError("an approver cannot be empty")
        return list(dict.fromkeys(names))


LIST_UNSUBSCRIBE_REPLACED = (
    "list_unsubscribe is no longer supported: segmail now builds a signed per-recipient List-Unsubscribe "
    "from the settings SEGMAIL_PUBLIC_URL (one-click) and SEGMAIL_UNSUBSCRIBE_MAILTO; remove the field"
)


class Mailing(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    slug: str = ""
    name: str = Field(min_length=1)
    description: str = ""
    channel: Channel = Channel.EMAIL
    audience: Audience
    schedule: str | None = Field(default=None, description="cron, `after_import`, or empty for manual only")
    smtp_conn_id: str = "smtp_default"
    from_: str | None = Field(default=None, alias="from", pattern=_HEADER_SAFE.pattern)  # e-mail: required
    reply_to: str | None = Field(default=None, pattern=_HEADER_SAFE.pattern)
    # channel: sms — the sender (else the gateway connection's extra `default_sender`), the gateway, the longest message
    sender: str | None = None
    gateway_conn_id: str = DEFAULT_GATEWAY_CONN_ID
    max_parts: int = Field(default=3, ge=1, le=10, description="SMS parts a message may take")
    default_language: str
    batch_size: int = Field(default=500, ge=1, le=50_000)
    rate_limit_per_second: float | None = Field(default=None, gt=0, description="per send task (batch)")
    smtp_connections: int = Field(
        default=2,
        ge=1,
        le=16,
        description="SMTP connections per send task; mails are pipelined over them (RFC 2920 when offered)",
    )
    activity_log: bool = True
    failure_threshold: float = Field(default=0.05, ge=0, le=1, description="failed share that fails the run")
    salesperson: str | None = Field(default=None, description="code of the responsible salesperson")
    list_id: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9.-]*$",
        description="List-Id (RFC 2919); default <slug>.<From domain>",
    )
    dkim: Dkim | None = None
    max_lateness_hours: float = Field(
        default=6, gt=0, description="a scheduled run starting later is not sent"
    )
    # Local time, send window and caps (segmail.throttle): the schedule, the window, lateness and
    # the mailing's daily cap are in `timezone`.
    timezone: str = Field(default="UTC", description="IANA time zone, e.g. Europe/Vienna")
    send_window: SendWindow | None = Field(
        default=None, description='e.g. {days: [mon-fri], start: "08:00", end: "18:00"}'
    )
    max_per_hour: int | None = Field(
        default=None, ge=1, description="mails per hour over all batches and runs"
    )
    max_per_day: int | None = Field(
        default=None, ge=1, description="mails per local day over all batches and runs"
    )
    approval: Approval = Field(default_factory=Approval)
    deadline_hours: float | None = Field(
        default=None, gt=0, description="alert when a run has not finished this long after its scheduled time"
    )
    notify: list[str] = Field(
        default_factory=list,
        description="addresses told of approval requests and late runs; default: the responsible salesperson",
    )
    variants: dict[str, Variant | SmsVariant] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _no_static_list_unsubscribe(cls, data: object) -> object:
        if isinstance(data, dict) and "list_unsubscribe" in data:
            raise ValueError(LIST_UNSUBSCRIBE_REPLACED)
        return data

    @model_validator(mode="before")
    @classmethod
    def _fields_of_the_channel(cls, data: object) -> object:
        if isinstance(data, dict):
            problem = other_channel_field(data, str(data.get("channel") or Channel.EMAIL))
            if problem:
                raise ValueError(problem)
        return data

    @field_validator("variants", mode="before")
    @classmethod
    def _variants_of_the_channel(cls, variants: object, info: ValidationInfo) -> object:
        return channel_variants(variants, info.data.get("channel", Channel.EMAIL), Variant)

    @field_validator("sender")
    @classmethod
    def _sender(cls, sender: str | None) -> str | None:
        return check_sender(sender) if sender is not None else None

    @field_validator("timezone")
    @classmethod
    def _iana_timezone(cls, name: str) -> str:
        zone(name)
        return name

    @field_validator("notify")
    @classmethod
    def _notify_addresses(cls, notify: list[str]) -> list[str]:
        from segmail.addresses import safe_address

        bad = [a for a in notify if safe_address(a) is None]
        if bad:
            raise ValueError(f"not a usable e-mail address: {', '.join(map(repr, bad))}")
        return notify

    @field_validator("variants")
    @classmethod
    def _language_codes(cls, variants: dict[str, Variant]) -> dict[str, Variant]:
        from segmail.language import normalize_language

        out = {}
        for code, variant in variants.items():
            tag = normalize_language(code)
            if tag is None:
                raise ValueError(f"{code!r} is not a language code such as de, en or fr-CA")
            out[tag] = variant
        return out

    @model_validator(mode="after")
    def _default_language_has_a_variant(self) -> Mailing:
        from segmail.language import normalize_language

        self.default_language = normalize_language(self.default_language) or self.default_language
        if self.channel == Channel.EMAIL and not self.from_:
            raise ValueError("from: required for an e-mail mailing (the From address)")
        if self.default_language not in self.variants:
            raise ValueError(
                f"default_language {self.default_language!r} has no variant "
                f"(variants: {', '.join(self.variants)})"
            )
        if self.schedule and self.schedule != "after_import":
            from croniter import croniter

            if not croniter.is_valid(self.schedule):
                raise ValueError(f"schedule {self.schedule!r} is neither a cron expression nor after_import")
        return self

    def too_late(self, *, scheduled_for: datetime | None, now: datetime) -> str | None:
        """Why a scheduled run should not send (None if it may): Airflow runs the latest missed
        interval when a DAG is unpaused or the scheduler was down, and a newsletter weeks late is
        worse than none."""
        if scheduled_for is None:
            return None
        late = now - scheduled_for
        if late > timedelta(hours=self.max_lateness_hours):
            return (
                f"scheduled for {self.local_time(scheduled_for)}, starting {late} later (more than "
                f"max_lateness_hours={self.max_lateness_hours:g}); not sent — trigger the DAG to send now"
            )
        return None

    @property
    def zone(self) -> ZoneInfo:
        return zone(self.timezone)

    def local_time(self, moment: datetime) -> str:
        """'2026-01-05 09:00 Europe/Vienna (08:00 UTC)'; '2026-01-05 08:00 UTC' for a UTC mailing."""
        utc = moment.astimezone(UTC)
        if self.timezone == "UTC":
            return f"{utc:%Y-%m-%d %H:%M} UTC"
        return f"{moment.astimezone(self.zone):%Y-%m-%d %H:%M} {self.timezone} ({utc:%H:%M} UTC)"

    @property
    def list_id_value(self) -> str:
        """`Name <id>`: the mailing's List-Id header (RFC 2919), stable across runs."""
        from email.utils import parseaddr

        domain = parseaddr(self.from_)[1].rpartition("@")[2] or "segmail.local"
        list_id = self.list_id or f"{self.slug.replace('_', '-')}.{domain}"
        return f"{self.name} <{list_id}>"

    @property
    def dag_id(self) -> str:
        return f"mailing__{self.slug}"

    def variant_for(self, language: str | None) -> str:
        """Exact code (de-AT), then base language (de), then the mailing's default."""
        return choose_language(language, self.variants, self.default_language)


def mailings_dir() -> Path:
    return include_dir() / "mailings"


def templates_dir() -> Path:
    return include_dir() / "templates"


def _format_error(path: Path, exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        field = ".".join(str(p) for p in error["loc"]) or "(file)"
        problems.append(f"{field}: {error['msg']}")
    return f"{path.name}: " + "; ".join(problems)


def load_mailing(path: Path) -> Mailing:
    import yaml

    slug = path.stem
    if not SLUG.match(slug):
        raise SegmailError(f"{path.name}: file name must be a slug (lower-case letters, digits, _)")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise SegmailError(f"{path.name}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise SegmailError(f"{path.name}: expected a mapping of fields")
    try:
        return Mailing.model_validate({**data, "slug": slug})
    except ValidationError as exc:
        raise SegmailError(_format_error(path, exc)) from None


def load_mailings(folder: Path | None = None) -> tuple[dict[str, Mailing], dict[str, str]]:
    """(mailings by slug, errors by file name): one broken file does not hide the others."""
    folder = folder or mailings_dir()
    mailings: dict[str, Mailing] = {}
    errors: dict[str, str] = {}
    for path in sorted(folder.glob("*.y*ml")) if folder.is_dir() else []:
        try:
            mailings[path.stem] = load_mailing(path)
        except SegmailError as exc:
            errors[path.name] = str(exc)
    return mailings, errors


def get_mailing(slug: str) -> Mailing:
    for suffix in (".yaml", ".yml"):
        path = mailings_dir() / f"{slug}{suffix}"
        if path.is_file():
            return load_mailing(path)
    raise NotFound(f"no mailing {slug!r} in {mailings_dir()}")
