"""How long an SMS is: GSM-7 or UCS-2, characters and parts (3GPP TS 23.038 and 23.040).

A message goes as GSM-7 when every character is in the GSM 7-bit default alphabet or its extension
table (an extension character, such as `€` or `{`, takes two septets: the escape and itself); one
character outside both switches the *whole* message to UCS-2, where every UTF-16 code unit counts
(an emoji outside the BMP takes two). A single part holds 160 septets or 70 code units; a longer
message is concatenated, and each part loses room to its user data header: 153 septets or 67 code
units. A part never splits an escape pair or a surrogate pair, so parts are counted by filling
them, not by dividing.
"""

from __future__ import annotations

from dataclasses import dataclass

from segmail.sms.gateway import SmsEncoding

# The GSM 7-bit default alphabet (without 0x1B, the escape to the extension table).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# The default extension table: each costs two septets.
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

SINGLE_PART = {SmsEncoding.GSM7: 160, SmsEncoding.UCS2: 70}
CONCATENATED_PART = {SmsEncoding.GSM7: 153, SmsEncoding.UCS2: 67}


@dataclass(frozen=True, kw_only=True)
class SmsLength:
    """What a text costs as an SMS. `characters` counts what the limits count: septets for GSM-7
    (an extension character counts 2), UTF-16 code units for UCS-2."""

    encoding: SmsEncoding
    characters: int
    parts: int
    non_gsm: str = ""  # for UCS-2: the first character outside GSM-7, the reason for the switch

    def describe(self) -> str:
        why = f" (because of {self.non_gsm!r})" if self.non_gsm else ""
        plural = "" if self.parts == 1 else "s"
        return f"{self.encoding}{why}, {self.characters} characters, {self.parts} part{plural}"


def first_non_gsm(text: str) -> str:
    """The first character GSM-7 cannot carry, or "" when the text is GSM-7."""
    return next((ch for ch in text if ch not in GSM7_BASIC and ch not in GSM7_EXTENSION), "")


def encoding_of(text: str) -> SmsEncoding:
    return SmsEncoding.UCS2 if first_non_gsm(text) else SmsEncoding.GSM7


def _units(ch: str, encoding: SmsEncoding) -> int:
    if encoding == SmsEncoding.GSM7:
        return 2 if ch in GSM7_EXTENSION else 1
    return 2 if ord(ch) > 0xFFFF else 1


def _filled_parts(text: str, encoding: SmsEncoding) -> int:
    """Parts of a concatenated message, filling each without splitting a character's units."""
    room, parts, used = CONCATENATED_PART[encoding], 1, 0
    for ch in text:
        units = _units(ch, encoding)
        if used + units > room:
            parts, used = parts + 1, 0
        used += units
    return parts


def measure(text: str) -> SmsLength:
    """Encoding, characters and parts of `text` as one SMS (an empty text still is one part)."""
    non_gsm = first_non_gsm(text)
    encoding = SmsEncoding.UCS2 if non_gsm else SmsEncoding.GSM7
    characters = sum(_units(ch, encoding) for ch in text)
    parts = 1 if characters <= SINGLE_PART[encoding] else _filled_parts(text, encoding)
    return SmsLength(encoding=encoding, characters=characters, parts=parts, non_gsm=non_gsm)
