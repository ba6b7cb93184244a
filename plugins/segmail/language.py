"""Language tags (BCP 47), kept free of heavy imports: DAG files use it at parse time."""

from __future__ import annotations

import re
from collections.abc import Iterable

_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8})*$")


def normalize_language(value: str) -> str | None:
    """BCP 47 casing (`de-AT`, `zh-Hant-TW`), or None when the value is not a language tag."""
    value = value.replace("_", "-")
    if not _LANGUAGE.match(value):
        return None
    parts = value.split("-")
    out = [parts[0].lower()]
    for part in parts[1:]:
        if len(part) == 2 and part.isalpha():
            out.append(part.upper())
        elif len(part) == 4 and part.isalpha():
            out.append(part.title())
        else:
            out.append(part.lower())
    return "-".join(out)


def choose_language(language: str | None, available: Iterable[str], default: str) -> str:
    """Exact code (de-AT), then base language (de), then the default: how mails and pages pick theirs."""
    if language:
        by_key = {code.casefold(): code for code in available}
        exact = by_key.get(language.casefold())
        if exact:
            return exact
        base = by_key.get(language.split("-")[0].casefold())
        if base:
            return base
    return default
