"""What a mailing definition with `channel: sms` may say, and what it may not.

An SMS variant is plain text: `text:` (an inline template) or `body:` (a template file), and an
optional `sender:` overriding the mailing's. Fields of the other channel are refused by name, so
a `subject:` copied from an e-mail mailing is an error that says so, not a silently ignored line.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from segmail.store.models import Channel

# A numeric sender (up to 15 digits, as E.164) or an alphanumeric sender ID (up to 11 characters,
# with at least one letter: operators treat an all-digit ID as a number).
_NUMERIC_SENDER = re.compile(r"^\+?[0-9]{3,15}$")
_ALPHANUMERIC_SENDER = re.compile(r"^[A-Za-z0-9 .&_-]{1,11}$")

EMAIL_MAILING_FIELDS = ("from", "from_", "reply_to", "smtp_conn_id", "smtp_connections", "dkim", "list_id")
SMS_MAILING_FIELDS = ("sender", "gateway_conn_id", "max_parts")
EMAIL_VARIANT_FIELDS = ("subject", "html", "from", "reply_to", "text_body", "attachments")
SMS_VARIANT_FIELDS = ("text", "sender")
DEFAULT_GATEWAY_CONN_ID = "sms_default"


def check_sender(sender: str) -> str:
    """The sender as given, or ValueError saying what a sender may be."""
    sender = sender.strip()
    if _NUMERIC_SENDER.match(sender):
        return sender
    if _ALPHANUMERIC_SENDER.match(sender) and any(ch.isalpha() for ch in sender):
        return sender
    raise ValueError(
        f"sender {sender!r} must be a number (up to 15 digits, optionally with +) or an alphanumeric"
        " sender ID of at most 11 letters, digits, spaces or . & _ -"
    )


class SmsVariant(BaseModel):
    """One language of an SMS mailing."""

    model_config = ConfigDict(extra="forbid")

    text: str | None = Field(default=None, min_length=1, description="the message, an inline template")
    body: str | None = Field(default=None, min_length=1, description="template path under include/templates/")
    sender: str | None = Field(default=None, description="overrides the mailing's sender")

    @field_validator("sender")
    @classmethod
    def _sender(cls, sender: str | None) -> str | None:
        return check_sender(sender) if sender is not None else None

    @model_validator(mode="after")
    def _text_or_body(self) -> SmsVariant:
        if (self.text is None) == (self.body is None):
            raise ValueError("give the message as either text (inline) or body (a template file), not both")
        return self


def other_channel_field(data: dict, channel: str) -> str | None:
    """Why a mailing-level field does not belong to this channel, or None."""
    if channel == Channel.SMS:
        wrong, other = EMAIL_MAILING_FIELDS, "an e-mail"
    else:
        wrong, other = SMS_MAILING_FIELDS, "an SMS (channel: sms)"
    found = next((name for name in wrong if name in data), None)
    if found is None:
        return None
    return f"{found.rstrip('_')} is a field of {other} mailing; this mailing has channel: {channel}"


def _variant_problem(language: str, error: ValidationError) -> str:
    problems = []
    for item in error.errors():
        field = ".".join(str(p) for p in item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        problems.append(f"{language}.{field}: {message}" if field else f"{language}: {message}")
    return "; ".join(problems)


def channel_variants(raw: object, channel: str, email_model: type[BaseModel]) -> object:
    """The variants validated as the channel's model, fields of the other channel refused by name."""
    if not isinstance(raw, dict):
        return raw
    sms = channel == Channel.SMS
    model, wrong = (SmsVariant, EMAIL_VARIANT_FIELDS) if sms else (email_model, SMS_VARIANT_FIELDS)
    out = {}
    for language, variant in raw.items():
        if isinstance(variant, dict):
            found = next((name for name in wrong if name in variant), None)
            if found is not None:
                kind = (
                    "an e-mail variant, not of an SMS variant (text or body, sender)"
                    if sms
                    else ("an SMS variant (channel: sms), not of an e-mail variant")
                )
                raise ValueError(f"{language}.{found} is a field of {kind}")
            try:
                variant = model.model_validate(variant)
            except ValidationError as exc:
                raise ValueError(_variant_problem(language, exc)) from None
        out[language] = variant
    return out
