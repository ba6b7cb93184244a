"""Reading fakesmsc's output back: single messages, UCS-2, concatenated parts and line breaks."""

from __future__ import annotations

from segmail.dev.smsgateway import _assemble, _message_lines
from segmail.sms.gateway import SmsEncoding


def got(n: int, body: str) -> str:
    return f"2026-11-28 04:00:42 [15126] [0] DEBUG: Got message {n}: <{body}>"


def test_text_ucs2_and_concatenated_messages_are_read_back():
    output = [
        "2026-11-28 04:00:41 [15126] [0] INFO: fakesmsc starting",
        got(1, "Autohaus +436641234567 text Hallo ä€ {x}"),
        got(2, "Autohaus +436641234568 ucs-2 %00C%00a%00f%00%E9%00+%04%16"),
        got(3, "Autohaus +436641234569 udh %05%00%03%02%02%01 data Hallo+Anna%2C+"),
        got(4, "Autohaus +436641234570 udh %05%00%03%03%02%01 data %00%E9%00+"),
        got(5, "Autohaus +436641234569 udh %05%00%03%02%02%02 data wie+geht%27s%3F+1%2B1"),
        got(6, "Autohaus +436641234570 udh %05%00%03%03%02%02 data %04%16"),
        got(7, "Autohaus +436641234571 text Zeile eins"),
        got(8, "Zeile zwei"),
    ]
    messages = _assemble(_message_lines(output))
    assert [(m.to, m.text, m.encoding, m.parts) for m in messages] == [
        ("+436641234567", "Hallo ä€ {x}", SmsEncoding.GSM7, 1),
        ("+436641234568", "Café Ж", SmsEncoding.UCS2, 1),
        ("+436641234569", "Hallo Anna, wie geht's? 1+1", SmsEncoding.GSM7, 2),
        ("+436641234570", "é Ж", SmsEncoding.UCS2, 2),
        ("+436641234571", "Zeile eins\nZeile zwei", SmsEncoding.GSM7, 1),
    ]
