"""GSM-7 versus UCS-2, characters and parts: what an SMS costs before it is sent."""

from __future__ import annotations

import pytest
from segmail.sms.encoding import GSM7_BASIC, GSM7_EXTENSION, encoding_of, first_non_gsm, measure
from segmail.sms.gateway import SmsEncoding

GSM, UCS = SmsEncoding.GSM7, SmsEncoding.UCS2


def test_the_alphabets_have_the_sizes_of_the_standard():
    assert len(GSM7_BASIC) == 127  # 128 code points minus the escape 0x1B
    assert len(GSM7_EXTENSION) == 10
    assert not GSM7_BASIC & GSM7_EXTENSION


@pytest.mark.parametrize(
    ("text", "encoding", "characters", "parts"),
    [
        pytest.param("", GSM, 0, 1, id="empty-is-one-part"),
        pytest.param("Hello Anna", GSM, 10, 1, id="ascii"),
        pytest.param("Grüße aus Wien, Ihr Autohaus", GSM, 28, 1, id="german-umlauts-and-sharp-s-are-gsm"),
        pytest.param("Café à Genève", GSM, 13, 1, id="e-acute-e-grave-a-grave-are-gsm"),
        pytest.param("Ça va ? Ñandu", GSM, 13, 1, id="capital-c-cedilla-and-n-tilde-are-gsm"),
        pytest.param("Price: 20€", GSM, 11, 1, id="euro-sign-counts-two"),
        pytest.param("{[~]}|^\\", GSM, 16, 1, id="every-bracket-counts-two"),
        pytest.param("a" * 160, GSM, 160, 1, id="gsm-160-fits-one"),
        pytest.param("a" * 161, GSM, 161, 2, id="gsm-161-needs-two"),
        pytest.param("a" * 306, GSM, 306, 2, id="gsm-306-fits-two"),
        pytest.param("a" * 307, GSM, 307, 3, id="gsm-307-needs-three"),
        pytest.param("a" * 459, GSM, 459, 3, id="gsm-459-fits-three"),
        pytest.param("€" * 80, GSM, 160, 1, id="eighty-euros-fill-one-part"),
        pytest.param("€" * 81, GSM, 162, 2, id="eighty-one-euros-need-two"),
        # 152 septets, then a euro: the escape pair does not fit in the 153rd septet, so the first part
        # ends at 152 and the second holds euro + 152 a's (154 > 153): three parts, not two.
        pytest.param("a" * 152 + "€" + "a" * 152, GSM, 306, 3, id="escape-pair-never-splits"),
        pytest.param("Zażółć", UCS, 6, 1, id="polish-switches-to-ucs2"),
        pytest.param("Dziękujemy", UCS, 10, 1, id="one-e-ogonek-switches-whole-message"),
        pytest.param("Привет", UCS, 6, 1, id="cyrillic"),
        pytest.param("It’s here", UCS, 9, 1, id="typographic-apostrophe-is-not-gsm"),
        pytest.param("tab\there", UCS, 8, 1, id="tab-is-not-gsm"),
        pytest.param("ç" + "a" * 10, UCS, 11, 1, id="small-c-cedilla-is-not-gsm"),
        pytest.param("Ñandú", UCS, 5, 1, id="u-acute-is-not-gsm-though-u-grave-is"),
        pytest.param("ą" + "a" * 69, UCS, 70, 1, id="ucs2-70-fits-one"),
        pytest.param("ą" + "a" * 70, UCS, 71, 2, id="ucs2-71-needs-two"),
        pytest.param("ą" + "a" * 133, UCS, 134, 2, id="ucs2-134-fits-two"),
        pytest.param("ą" + "a" * 134, UCS, 135, 3, id="ucs2-135-needs-three"),
        pytest.param("😀", UCS, 2, 1, id="emoji-outside-bmp-is-two-code-units"),
        pytest.param("😀" * 35, UCS, 70, 1, id="thirty-five-emoji-fill-one-part"),
        # 66 units, then an emoji (2 units) does not fit the 67-unit part: surrogates never split.
        pytest.param("ą" * 66 + "😀" + "a" * 66, UCS, 134, 3, id="surrogate-pair-never-splits"),
        pytest.param("20€ zł", UCS, 6, 1, id="euro-counts-one-in-ucs2"),
    ],
)
def test_measure(text, encoding, characters, parts):
    length = measure(text)
    assert (length.encoding, length.characters, length.parts) == (encoding, characters, parts)
    assert encoding_of(text) == encoding


@pytest.mark.parametrize(
    ("text", "first"),
    [
        pytest.param("Hallo Anna", "", id="gsm"),
        pytest.param("Hallo Zoë, ą", "ë", id="first-of-several"),
        pytest.param("100 € — bis Freitag", "—", id="em-dash"),
    ],
)
def test_first_non_gsm_names_the_character_that_switched_the_message(text, first):
    assert first_non_gsm(text) == first
    assert measure(text).non_gsm == first


@pytest.mark.parametrize(
    ("text", "described"),
    [
        pytest.param("Hi", "GSM-7, 2 characters, 1 part", id="gsm"),
        pytest.param("a" * 200, "GSM-7, 200 characters, 2 parts", id="gsm-two-parts"),
        pytest.param("Łódź", "UCS-2 (because of 'Ł'), 4 characters, 1 part", id="ucs2"),
    ],
)
def test_describe(text, described):
    assert measure(text).describe() == described
