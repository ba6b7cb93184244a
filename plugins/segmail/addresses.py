"""E-mail addresses, mobile numbers and countries: the checks shared by the import, the contacts
actions and the mail composer. The field libraries are imported on first use, not at import time."""

from __future__ import annotations

import re
from functools import cache

# Addresses this pattern accepts are accepted by email-validator too (plain ASCII dot-atoms with a
# letter TLD); everything else is handed to email-validator for the exact verdict and its reason.
_FAST_EMAIL = (
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
)
_ADDRESS = re.compile(r"^[^\s@<>,;:\"()\[\]\\]+@[^\s@<>,;:\"()\[\]\\]+\.[^\s@<>,;:\"()\[\]\\]+$")


@cache
def iso_countries() -> frozenset[str]:
    """ISO 3166-1 alpha-2 codes: phonenumbers' regions plus the few territories without phones."""
    import phonenumbers

    return frozenset(phonenumbers.SUPPORTED_REGIONS) | {"AQ", "BV", "GS", "HM", "PN", "TF", "UM"}


@cache
def _special_use_tlds() -> frozenset[str]:
    import email_validator

    return frozenset(email_validator.SPECIAL_USE_DOMAIN_NAMES)


def check_email(value: str) -> tuple[str | None, str | None]:
    """(normalised address, None) or (None, reason)."""
    from email_validator import EmailNotValidError, validate_email

    try:
        result = validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        return None, str(exc)
    return result.normalized, None


def check_mobile(value: str, country: str) -> tuple[str | None, str | None]:
    """(E.164 number, None) or (None, reason), reading national numbers in the row's country."""
    import phonenumbers

    try:
        number = phonenumbers.parse(value, country)
    except phonenumbers.NumberParseException as exc:
        return None, f"not a phone number ({exc._msg})"
    if not phonenumbers.is_valid_number(number):
        return None, f"not a valid phone number for country {country}"
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), None


def email_key(address: str) -> str:
    """What an address is matched by everywhere (contacts, opt-outs, suppressions, deliveries): lower
    case, as the import keys contacts and as SQL's LOWER does (SQLite's is made the same in
    `store.db`). Not casefold: "straße@" and "strasse@" are two mailboxes."""
    return address.strip().lower()


def safe_address(address: str | None) -> str | None:
    """The address if it can go into an envelope and a header as is, else None."""
    if not address or not _ADDRESS.match(address) or not address.isascii():
        return None
    return address
