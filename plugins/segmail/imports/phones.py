"""Mobile numbers read exactly as `addresses.check_mobile` reads them, at a fraction of its cost.

`check_mobile` (phonenumbers' parse, is_valid_number and E.164 format) costs about 30 µs a number,
most of it spent on steps that change nothing for the usual cell: a national number written with
digits and spaces, hyphens, dots or parentheses. For such a cell, phonenumbers' result depends only
on the country and the digits: no plus sign, no extension, no letters, and the cell is a viable
number once it has 3 digits. `mobile_e164` runs, for those cells, the steps that remain, in the
library's order and on the library's own metadata: the international prefix and the country code
(a cell starting with either goes to the library), the national prefix, the length test, the
region of the number and its validity. Every other cell, and every number this path cannot
parse, goes through `check_mobile` itself, so verdicts and messages are the library's.
tests/unit/imports/test_phones.py compares both on numbers of every country.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from segmail.addresses import check_mobile

_MAX_CHARS = 250  # phonenumbers reads at most 250 characters
_SEPARATORS = str.maketrans("", "", " ().-")
_MIN_DIGITS = 3  # fewer digits with separators between them are no viable number for phonenumbers
_NSN_LENGTHS = range(2, 18)  # phonenumbers' _MIN_LENGTH_FOR_NSN.._MAX_LENGTH_FOR_NSN
INVALID = "not a valid phone number for country {}"  # check_mobile's reason for a parsed number


@dataclass(frozen=True)
class _Types:
    """When phonenumbers finds a national number of one region valid (`_number_type_helper` is not
    UNKNOWN): it matches the general description, then any of the type descriptions."""

    general: re.Pattern | None
    general_lengths: frozenset[int]
    by_length: dict[int, re.Pattern | None]  # the type patterns that a number of that length may match

    def valid(self, nsn: str) -> bool:
        length = len(nsn)
        if self.general is None or (self.general_lengths and length not in self.general_lengths):
            return False
        if not self.general.fullmatch(nsn):
            return False
        types = self.by_length.get(length)
        return types is not None and types.fullmatch(nsn) is not None


@dataclass(frozen=True)
class _Plan:
    """What parsing a national number in one region needs from its metadata."""

    code: str  # the country calling code
    idd: re.Pattern | None  # the international prefix
    national_prefix: re.Pattern | None  # national_prefix_for_parsing
    transform: str | None
    general: re.Pattern | None
    lengths: tuple[int, ...]  # the general description's possible lengths
    local_lengths: tuple[int, ...]


def _pattern(desc: object) -> re.Pattern | None:
    text = getattr(desc, "national_number_pattern", None) if desc is not None else None
    return re.compile(text) if text else None


@cache
def _metadata(region: str) -> object | None:
    from phonenumbers.phonemetadata import PhoneMetadata

    return PhoneMetadata.metadata_for_region(region, None)


@cache
def _plan(region: str) -> _Plan | None:
    metadata = _metadata(region)
    if metadata is None:
        return None
    general = metadata.general_desc
    return _Plan(
        code=str(metadata.country_code),
        idd=re.compile(metadata.international_prefix) if metadata.international_prefix is not None else None,
        national_prefix=re.compile(metadata.national_prefix_for_parsing)
        if metadata.national_prefix_for_parsing
        else None,
        transform=metadata.national_prefix_transform_rule or None,
        general=_pattern(general),
        lengths=tuple(general.possible_length),
        local_lengths=tuple(general.possible_length_local_only),
    )


_TYPE_FIELDS = ("premium_rate", "toll_free", "shared_cost", "voip", "personal_number", "pager", "uan")


@cache
def _types(region: str) -> _Types:
    metadata = _metadata(region)
    if metadata is None:  # phonenumbers finds no number of a region without metadata valid
        return _Types(None, frozenset(), {})
    descs = [getattr(metadata, name) for name in (*_TYPE_FIELDS, "voicemail", "fixed_line")]
    if not metadata.same_mobile_and_fixed_line_pattern:  # else the mobile pattern is never tried
        descs.append(metadata.mobile)
    descs = [d for d in descs if d is not None and d.national_number_pattern]
    by_length: dict[int, re.Pattern | None] = {}
    for length in _NSN_LENGTHS:
        fitting = [
            d.national_number_pattern for d in descs if not d.possible_length or length in d.possible_length
        ]
        by_length[length] = re.compile("|".join(f"(?:{p})" for p in fitting)) if fitting else None
    general = metadata.general_desc
    return _Types(_pattern(general), frozenset(general.possible_length), by_length)


@cache
def _regions(code: str) -> tuple[str, ...]:
    from phonenumbers import COUNTRY_CODE_TO_REGION_CODE

    return tuple(COUNTRY_CODE_TO_REGION_CODE.get(int(code), ()))


def _valid_in_region_of(nsn: str, code: str) -> bool:
    """phonenumbers' region_code_for_number (the one region of the code, or the first of its
    regions whose leading digits or number types claim the number), then whether the number is
    valid there; a region its number types claimed needs no second look."""
    regions = _regions(code)
    if len(regions) == 1:
        return _types(regions[0]).valid(nsn)
    for region in regions:
        metadata = _metadata(region)
        if metadata is None:
            continue
        if metadata.leading_digits is not None:
            if _leading(metadata.leading_digits).match(nsn):
                return _types(region).valid(nsn)
        elif _types(region).valid(nsn):
            return True
    return False


@cache
def _leading(pattern: str) -> re.Pattern:
    return re.compile(pattern)


def _too_short_or_local(number: str, plan: _Plan) -> bool:
    """phonenumbers' _test_number_length is TOO_SHORT, IS_POSSIBLE_LOCAL_ONLY or INVALID_LENGTH."""
    length, lengths = len(number), plan.lengths
    if length in plan.local_lengths:
        return True
    if lengths[0] == length:
        return False
    if lengths[0] > length:
        return True
    if lengths[-1] < length:
        return False  # TOO_LONG
    return length not in lengths[1:]


def _general_match(number: str, plan: _Plan) -> bool:
    return plan.general is not None and plan.general.fullmatch(number) is not None


def _strip_national_prefix(number: str, plan: _Plan) -> str:
    """phonenumbers' _maybe_strip_national_prefix_carrier_code followed by parse's length test."""
    match = plan.national_prefix.match(number) if plan.national_prefix else None
    if match is None:
        return number
    groups = match.groups()
    if plan.transform is None or groups[len(groups) - 1] is None:
        potential = number[match.end() :]
    else:
        potential = plan.national_prefix.sub(plan.transform, number, count=1)
    if _general_match(number, plan) and not _general_match(potential, plan):
        return number
    return number if _too_short_or_local(potential, plan) else potential


def _national_e164(digits: str, region: str) -> str | None:
    """The E.164 form of a national number, "" when it is parsed but not valid, None when the
    library must decide."""
    plan = _plan(region)
    if plan is None or (plan.idd is not None and plan.idd.match(digits)) or digits.startswith(plan.code):
        return None  # no metadata; an international prefix or a country code to extract
    national = _strip_national_prefix(digits, plan)
    if len(national) not in _NSN_LENGTHS:
        return None  # parse raises: the library words the reason
    return f"+{plan.code}{national}" if _valid_in_region_of(national, plan.code) else ""


def plain_digits(value: str) -> str | None:
    """The digits of a cell written with ASCII digits and separators only, else None."""
    digits = value.translate(_SEPARATORS)
    if len(value) > _MAX_CHARS or not (digits.isascii() and digits.isdigit()):
        return None  # other characters, or no digit at all
    return digits if len(digits) >= _MIN_DIGITS else None


def mobile_e164(value: str, country: str) -> tuple[str | None, str | None]:
    """Exactly `check_mobile(value, country)`: (E.164 number, None) or (None, reason)."""
    digits = plain_digits(value)
    if digits is not None:
        try:
            e164 = _national_e164(digits, country)
        except (IndexError, re.error):  # metadata this path does not expect: the library decides
            e164 = None
        if e164:
            return e164, None
        if e164 is not None:
            return None, INVALID.format(country)
    return check_mobile(value, country)
