"""Who gets an SMS, on tiny in-memory candidate rows: one message per number, every skip with its
reason, the language filter and the cap (tests/integration/sms/test_sms_send.py: the same on
SQLite and PostgreSQL)."""

from __future__ import annotations

from collections import namedtuple

import pytest
from fake_sms_support import sms_mailing
from segmail.sms.audience import (
    DUPLICATE_NUMBER,
    NO_MOBILE,
    NUMBER_OPTED_OUT,
    OPTED_OUT,
    select_sms_deliveries,
    sms_skip_reason,
)

Candidate = namedtuple("Candidate", "id mobile_e164 sms_opt_out language segment_id number_opted_out")


@pytest.mark.parametrize(
    ("mobile", "opted_out", "number_opted_out", "messaged", "reason"),
    [
        pytest.param("+436641234567", False, False, set(), None, id="sent"),
        pytest.param("+436641234567", True, True, set(), OPTED_OUT, id="own-opt-out-first"),
        pytest.param("+436641234567", False, True, set(), NUMBER_OPTED_OUT, id="number-opted-out-by-another"),
        pytest.param(None, False, False, set(), NO_MOBILE, id="no-mobile"),
        pytest.param("", False, False, set(), NO_MOBILE, id="empty-mobile"),
        pytest.param(
            "+436641234567", False, False, {"+436641234567"}, DUPLICATE_NUMBER, id="number-already-texted"
        ),
    ],
)
def test_skip_reason(mobile, opted_out, number_opted_out, messaged, reason):
    assert (
        sms_skip_reason(
            mobile=mobile, opted_out=opted_out, number_opted_out=number_opted_out, messaged=messaged
        )
        == reason
    )


def test_one_message_per_number_in_contact_order_and_variants_by_language():
    contacts = [
        Candidate(1, "+436641234567", False, "de-AT", 10, 0),
        Candidate(2, "+436641234567", False, "en", 10, 0),  # shares 1's number
        Candidate(3, None, False, "de", 10, 0),
        Candidate(4, "+4915123456789", True, "de", 11, 1),
        Candidate(5, "+14165550199", False, "fr-CA", 10, 0),  # no fr variant: the default, en
    ]
    rows, options = select_sms_deliveries(contacts, sms_mailing(), languages=None, max_recipients=None)
    assert rows == [
        (1, 10, "+436641234567", "de", "pending", None),
        (2, 10, "+436641234567", "en", "skipped", DUPLICATE_NUMBER),
        (3, 10, None, "de", "skipped", NO_MOBILE),
        (4, 11, "+4915123456789", "de", "skipped", OPTED_OUT),
        (5, 10, "+14165550199", "en", "pending", None),
    ]
    assert options["channel"] == "sms" and options["excluded_by_language"] == 0


def test_the_language_filter_and_the_cap_leave_contacts_without_a_row():
    contacts = [Candidate(i, f"+43664123456{i}", False, "de" if i % 2 else "en", 10, 0) for i in range(1, 7)]
    rows, options = select_sms_deliveries(contacts, sms_mailing(), languages=["de"], max_recipients=2)
    assert [r[0] for r in rows] == [1, 3]
    assert (options["excluded_by_language"], options["over_max_recipients"]) == (3, 1)
