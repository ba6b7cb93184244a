"""Which rows may be in-file duplicates, known while staging in memory that does not grow with
the file.

Each record's keys (external ID, e-mail, country + mobile) are hashed by the workers to a spot in a
table of 2**28 bits, staged with the record (`SPOT_COLUMNS`). The importing process keeps one bit
per spot (32 MB, only the touched pages in memory) and notes every spot it sees again. Rows that
share a key share its spot, so every row of a repeated key lies on a repeated spot; the other rows
there (other keys that hash alike) are few. imports.duplicates then groups and sorts just the rows
on repeated spots instead of every staged row.
"""

from __future__ import annotations

import numpy as np

SPOT_BITS = 28
SPOT_COLUMNS = ("external_id_spot", "email_spot", "phone_spot")
_MASK = (1 << SPOT_BITS) - 1


def key_spots(columns: dict[str, list]) -> list[list[int | None]]:
    """Per SPOT_COLUMNS, each record's spot (None without the key; empty values are ""). The
    workers are forked from one process, so they share its string hash seed: equal keys get equal
    spots."""
    phones = [
        f"{country}{mobile}" if mobile else ""
        for country, mobile in zip(columns["country_code"], columns["mobile_e164"], strict=True)
    ]
    keys = (columns["external_id"], columns["email_key"], phones)
    return [[hash(key) & _MASK if key else None for key in values] for values in keys]


def present(spots: list[list[int | None]]) -> np.ndarray:
    """All the spots of a chunk's keys, for SeenSpots.add."""
    return np.fromiter((spot for values in spots for spot in values if spot is not None), dtype=np.int64)


class SeenSpots:
    """The spots seen so far, one bit each, and the ones seen more than once."""

    def __init__(self) -> None:
        self.bits = np.zeros(1 << (SPOT_BITS - 3), dtype=np.uint8)
        self.again: list[np.ndarray] = []

    def add(self, spots: np.ndarray) -> None:
        spots = np.sort(spots)
        twice_here = spots[1:][spots[1:] == spots[:-1]]
        byte, bit = spots >> 3, (1 << (spots & 7)).astype(np.uint8)
        seen_before = spots[(self.bits[byte] & bit) != 0]
        self.again += [twice_here, seen_before]
        np.bitwise_or.at(self.bits, byte, bit)

    def repeated(self) -> np.ndarray:
        """The spots seen more than once, each once."""
        return np.unique(np.concatenate([np.zeros(0, dtype=np.int64), *self.again]))
