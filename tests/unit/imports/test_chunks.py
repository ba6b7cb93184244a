"""The worker side of staging: COPY text, segment ids, and the key spots that find the rows that
may be in-file duplicates."""

from __future__ import annotations

import numpy as np
from segmail.imports.chunks import Target, copy_text, stage_chunk
from segmail.imports.csvfile import CsvLayout, RecordBatch
from segmail.imports.keys import SeenSpots, key_spots, present

FIELDS = ["country_code", "first_name", "last_name", "email", "mobile", "external_id", "segments"]
LAYOUT = CsvLayout("utf-8", ",", FIELDS, {name: i for i, name in enumerate(FIELDS)})


def test_copy_text_escapes_only_what_copy_reads_specially():
    text = copy_text([[2, 3], ["tab\there", None], ["back\\slash", "\\N"], ["line\r\nbreak", "plain"]])
    assert text == "2\ttab\\there\tback\\\\slash\tline\\r\\nbreak\n3\t\\N\t\\\\N\tplain\n"
    assert copy_text([[], []]) == ""


def test_segments_become_ids_and_unknown_names_are_kept_for_the_warning():
    batch = RecordBatch(2, [["DE", "A", "B", "a@example.com", "", "E1", "VIP; Nope;vip"]])
    staged = stage_chunk(batch, layout=LAYOUT, target=Target(pg=False, segments={"vip": 7}))
    assert (staged.segments, staged.unknown_segments) == ([(2, 7)], [(2, "Nope")])
    rendered = stage_chunk(batch, layout=LAYOUT, target=Target(pg=True, segments={"vip": 7}))
    assert (rendered.segments, rendered.unknown_segments) == ("2\t7\n", "2\tNope\n")


def _spots(external_ids, emails, countries, mobiles):
    return key_spots(
        {"external_id": external_ids, "email_key": emails, "country_code": countries, "mobile_e164": mobiles}
    )


def test_rows_sharing_a_key_share_its_spot():
    ext, email, phone = _spots(
        ["E1", None, "E1", None, None],
        ["a@example.com", "b@example.com", None, "c@example.com", "b@example.com"],
        ["DE", "DE", "DE", "FR", "FR"],
        [None, "+4915123456789", None, "+4915123456789", None],
    )
    assert ext[0] == ext[2] and (ext[1], ext[3], ext[4]) == (None, None, None)
    assert email[1] == email[4] and email[0] != email[1]
    assert phone[1] != phone[3]  # the same number in another country is another key


def test_spots_seen_again_in_the_same_chunk_or_a_later_one_are_repeated():
    first = _spots(["E1", "E2"], ["a@example.com", "a@example.com"], [None, None], [None, None])
    later = _spots(["E2"], [None], [None], [None])
    seen = SeenSpots()
    seen.add(present(first))
    seen.add(present(later))
    assert sorted(seen.repeated().tolist()) == sorted({first[1][0], first[0][1]})
    fresh = SeenSpots()
    fresh.add(present(_spots(["E1"], ["a@example.com"], [None], [None])))
    assert fresh.repeated().tolist() == []
    assert SeenSpots().repeated().dtype == np.int64
