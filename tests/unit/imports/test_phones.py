"""The import's mobile reader gives exactly what addresses.check_mobile gives, for every country."""

from __future__ import annotations

import random

import phonenumbers
import pytest
from segmail.addresses import check_mobile
from segmail.imports import phones
from segmail.imports.phones import mobile_e164, plain_digits

_TYPES = (
    phonenumbers.PhoneNumberType.MOBILE,
    phonenumbers.PhoneNumberType.FIXED_LINE,
    phonenumbers.PhoneNumberType.TOLL_FREE,
    phonenumbers.PhoneNumberType.PREMIUM_RATE,
    phonenumbers.PhoneNumberType.VOIP,
    phonenumbers.PhoneNumberType.PAGER,
    phonenumbers.PhoneNumberType.UAN,
)


def _written(digits: str, rng: random.Random) -> str:
    """The digits as people write them: separators here and there, maybe in parentheses."""
    out = []
    for digit in digits:
        if rng.random() < 0.2:
            out.append(rng.choice([" ", "-", ".", "(", ")", " - "]))
        out.append(digit)
    return "".join(out)


def _mutated(digits: str, rng: random.Random) -> str:
    """One digit changed, added or dropped: mostly numbers that are no longer valid."""
    chars, at = list(digits), rng.randrange(len(digits) + 1)
    kind = rng.randrange(3)
    if kind == 0 and at < len(chars):
        chars[at] = str(rng.randrange(10))
    elif kind == 1:
        chars.insert(at, str(rng.randrange(10)))
    elif at < len(chars) and len(chars) > 1:
        del chars[at]
    return "".join(chars)


def _cases(region: str, rng: random.Random, per_region: int) -> list[str]:
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region, None)
    examples = [phonenumbers.example_number_for_type(region, t) for t in _TYPES]
    examples = [e for e in examples if e is not None]
    cases = [phonenumbers.format_number(e, phonenumbers.PhoneNumberFormat.NATIONAL) for e in examples]
    cases += [phonenumbers.format_number(e, phonenumbers.PhoneNumberFormat.INTERNATIONAL) for e in examples]
    bases = [phonenumbers.national_significant_number(e) for e in examples] or ["1234567"]
    prefixes = ["", metadata.national_prefix or "", str(metadata.country_code), "00", "011", "0", "9", "8"]
    for _ in range(per_region):
        digits = rng.choice(prefixes) + rng.choice(bases)
        for _ in range(rng.randrange(3)):
            digits = _mutated(digits, rng)
        if rng.random() < 0.1:
            digits = "".join(str(rng.randrange(10)) for _ in range(rng.randrange(1, 19)))
        cases.append(_written(digits, rng) if rng.random() < 0.5 else digits)
    return cases


@pytest.mark.parametrize("region", sorted(phonenumbers.SUPPORTED_REGIONS))
def test_every_country_reads_numbers_exactly_as_check_mobile(region):
    rng = random.Random(region)
    for value in _cases(region, rng, per_region=60):
        assert mobile_e164(value, region) == check_mobile(value, region), value


@pytest.mark.parametrize(
    ("value", "country"),
    [
        pytest.param("0151 2345 6789", "DE", id="de-national"),
        pytest.param("(415) 555-2671", "US", id="us-national"),
        pytest.param("(514) 555-0123", "US", id="canadian-number-with-us-country"),
        pytest.param("11 91234-5678", "BR", id="br-national-transform-rule"),
        pytest.param("+55 11 91234-5678", "BR", id="plus-goes-to-the-library"),
        pytest.param("0049 151 23456789", "DE", id="international-prefix-goes-to-the-library"),
        pytest.param("49 151 23456789", "DE", id="country-code-goes-to-the-library"),
        pytest.param("0151 CALL ME", "DE", id="letters-go-to-the-library"),
        pytest.param("12", "DE", id="too-few-digits"),
        pytest.param("1-2", "DE", id="two-digits-with-a-separator"),
        pytest.param("07911 12345", "GB", id="invalid-for-the-country"),
        pytest.param("0151 2345 6789", "AQ", id="country-without-numbers"),
        pytest.param("0151 2345 6789 ext. 12", "DE", id="extension"),
        pytest.param("3" * 30, "IT", id="too-long"),
        pytest.param("０１５１ ２３４５ ６７８９", "DE", id="full-width-digits-go-to-the-library"),
        pytest.param("0151 2345 6789²", "DE", id="superscript-goes-to-the-library"),
        pytest.param("0" + "1" * 250, "DE", id="over-250-characters-go-to-the-library"),
    ],
)
def test_edge_cases_match_check_mobile(value, country):
    assert mobile_e164(value, country) == check_mobile(value, country)


def test_national_numbers_with_separators_take_the_fast_path(monkeypatch):
    def library(*args):
        raise AssertionError("the library was asked")

    monkeypatch.setattr(phones, "check_mobile", library)
    assert mobile_e164("0151 2345 6789", "DE") == ("+4915123456789", None)
    assert mobile_e164("(415) 555-2671", "US") == ("+14155552671", None)
    assert mobile_e164("07911 12345", "GB") == (None, "not a valid phone number for country GB")


@pytest.mark.parametrize(
    ("value", "digits"),
    [
        ("(0151) 23-45.67 89", "015123456789"),
        ("+49 151", None),
        ("12", None),
        ("0151/234", None),
        ("", None),
        ("( ) - .", None),  # separators only
        ("０１５１ ２３４５６７８９", None),  # full-width digits: the library reads them
        ("٠١٥١٢٣٤٥٦٧٨٩", None),  # Arabic-Indic digits
        ("0151²", None),  # a digit to str.isdigit, not to the pattern
        ("1" * 250, "1" * 250),
        ("1" * 251, None),  # more than phonenumbers reads
    ],
)
def test_plain_digits_only_for_digits_and_separators(value, digits):
    assert plain_digits(value) == digits
