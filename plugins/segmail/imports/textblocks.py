"""Cutting a contact file's text into blocks of whole records without reading it as CSV.

The importing process only cuts the text and counts its records (each record's row number
follows from the count); the workers read the blocks as CSV. A line without a quote character is
one record, whatever the csv module makes of it; only lines with a quote (the few records that
may span lines) are read here, by the csv module itself, to find where they end. The count is
therefore the csv module's. A record the csv module cannot read there hands the rest of the file
back to the reading process (`rest`), as the whole file was read before.
"""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Iterator
from typing import TextIO

CHARS_PER_RECORD = 128  # a block of `size` records: about size * 128 characters


def _terminators(text: str, start: int, end: int) -> int:
    """Line ends (\\r\\n, \\n or \\r) in text[start:end], which starts and ends at line starts."""
    return text.count("\n", start, end) + text.count("\r", start, end) - text.count("\r\n", start, end)


def _line_start(text: str, start: int, at: int) -> int:
    """Where the line holding position `at` starts (not before `start`)."""
    return max(start, text.rfind("\n", start, at) + 1, text.rfind("\r", start, at) + 1)


class _Lines:
    """The lines of a text from a position on, counting the characters handed out."""

    def __init__(self, text: str) -> None:
        self.buffer = io.StringIO(text, newline="")
        self.used = 0

    def start_at(self, position: int) -> None:
        self.buffer.seek(position)
        self.used = 0

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        line = self.buffer.readline()
        if not line:
            raise StopIteration
        self.used += len(line)
        return line


class _Unreadable(Exception):
    """The csv module cannot read a record starting at `position`, after `records` records."""

    def __init__(self, position: int, records: int) -> None:
        self.position, self.records = position, records


def _count_records(text: str, delimiter: str, *, final: bool) -> tuple[int, int]:
    """(records, end): the whole records at the start of `text`, which starts at a record and
    ends at a line end (or the file's end when `final`)."""
    records, position, lines = 0, 0, None
    while (quote := text.find('"', position)) != -1:
        start = _line_start(text, position, quote)
        records += _terminators(text, position, start)
        if lines is None:
            lines = _Lines(text)
            reader = csv.reader(lines, delimiter=delimiter, strict=False)
        lines.start_at(start)
        try:
            next(reader)
        except csv.Error:
            raise _Unreadable(start, records) from None
        if start + lines.used >= len(text) and not final:
            return records, start  # it may go on in the next block
        records, position = records + 1, start + lines.used
    records += _terminators(text, position, len(text))
    if final and position < len(text) and text[-1] not in "\r\n":
        records += 1  # the last line has no line end
    return records, len(text)


class TextBlocks:
    """(text, records) blocks of about `chars` characters from an open text file (newline='')."""

    def __init__(self, fh: TextIO, delimiter: str, *, chars: int) -> None:
        self.fh, self.delimiter, self.chars = fh, delimiter, chars
        self.carry = ""  # text read but not handed out yet
        self.stopped = False  # at a record the csv module cannot read: see `rest`

    def __iter__(self) -> Iterator[tuple[str, int]]:
        while True:
            read = self.fh.read(self.chars)
            text, final = self.carry + read, not read
            cut = len(text) if final else _cut(text)
            try:
                records, end = _count_records(text[:cut], self.delimiter, final=final)
            except _Unreadable as exc:
                records, end, self.stopped = exc.records, exc.position, True
            self.carry = text[end:]
            if end:
                yield text[:end], records
            if final or self.stopped:
                return

    def rest(self) -> Iterator[str]:
        """The lines not handed out as blocks (after a record the csv module cannot read)."""
        if not self.stopped:
            return iter(())
        head = self.carry + self.fh.readline()  # completes the carried partial line
        return itertools.chain(io.StringIO(head, newline=""), self.fh)


def _cut(text: str) -> int:
    """After the last line end of the block; a final \\r may be the first half of \\r\\n."""
    return max(text.rfind("\n"), text.rfind("\r", 0, len(text) - 1)) + 1
