"""Batch planning as a pure function, and what an outcome writes."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest
from segmail.mailings.deliveries import MAX_BATCHES, Outcome, PlannedBatch, split_batches
from segmail.store.models import DeliveryStatus


def test_batches_hold_one_language_each_in_sorted_language_order():
    pending = [("fr", 5), ("de", 1), ("en", 2), ("de", 3), ("fr", 4)]
    assert split_batches(pending, batch_size=500) == [
        PlannedBatch("de", (1, 3)),
        PlannedBatch("en", (2,)),
        PlannedBatch("fr", (4, 5)),
    ]


def test_a_language_is_cut_into_batches_of_the_given_size():
    batches = split_batches([("en", i) for i in range(1, 8)], batch_size=3)
    assert [b.delivery_ids for b in batches] == [(1, 2, 3), (4, 5, 6), (7,)]


@pytest.mark.parametrize(
    ("count", "max_batches", "expected_size", "expected_batches"),
    [
        pytest.param(10, 10, 1, 10, id="at-the-limit-keeps-the-size"),
        pytest.param(11, 10, 2, 6, id="one-over-doubles"),
        pytest.param(50, 10, 8, 7, id="doubles-until-it-fits"),
    ],
)
def test_the_size_doubles_until_the_batches_fit(count, max_batches, expected_size, expected_batches):
    batches = split_batches([("en", i) for i in range(count)], batch_size=1, max_batches=max_batches)
    assert len(batches) == expected_batches <= max_batches
    assert len(batches[0].delivery_ids) == expected_size


def test_the_limit_counts_the_batches_of_every_language():
    pending = [(lang, i) for i in range(600) for lang in ("de", "en")]  # 2 x 600 at size 1
    batches = split_batches(pending, batch_size=1)
    assert MAX_BATCHES == 1000  # under Airflow's max_map_length of 1024
    assert len(batches) == 600  # size 2: 300 per language
    assert {len(b.delivery_ids) for b in batches} == {2}


def test_the_plan_does_not_depend_on_the_order_rows_arrive_in():
    pending = [(lang, i) for i, lang in enumerate(["de", "en", "fr"] * 40)]
    shuffled = pending[:]
    random.Random(4).shuffle(shuffled)
    assert split_batches(shuffled, batch_size=7) == split_batches(pending, batch_size=7)
    for batch in split_batches(shuffled, batch_size=7):
        assert list(batch.delivery_ids) == sorted(batch.delivery_ids)


def test_nothing_pending_plans_no_batch():
    assert split_batches([], batch_size=500) == []


def test_an_outcome_writes_at_most_2000_characters_of_the_reply():
    outcome = Outcome(1, DeliveryStatus.FAILED, datetime.now(UTC), code=550, response="x" * 5000)
    params = outcome.as_params()
    assert len(params["response"]) == 2000
    assert (params["status"], params["pending"]) == ("failed", "pending")
