"""Who of the audience is mailed, and why the others are not: the selection on tiny inputs."""

from __future__ import annotations

from collections import namedtuple

import pytest
from segmail.mailings.audience import select_deliveries, skip_reason
from segmail.store.models import DeliveryStatus
from unit.mailings.fakes import mailing

Contact = namedtuple("Contact", "id email email_key email_opt_out language segment_id suppressed")


def contact(
    contact_id: int, email: str | None = None, *, opted_out=False, language="en", suppressed=None
) -> Contact:
    email = email if email is not None else f"c{contact_id}@example.com"
    key = (email or "").casefold() or None
    return Contact(contact_id, email or None, key, opted_out, language, 1, suppressed)


def multilingual():
    return mailing(
        variants={
            "en": {"subject": "x", "body": "a.txt", "html": False},
            "de": {"subject": "x", "body": "a.txt", "html": False},
        }
    )


@pytest.mark.parametrize(
    ("email", "kwargs", "reason"),
    [
        pytest.param("a@example.com", {"opted_out": True}, "opted out", id="opted-out"),
        pytest.param(
            "a@example.com",
            {"opted_out_addresses": {"a@example.com"}},
            "opted out: another contact with this address opted out",
            id="address-opted-out-by-another-contact",
        ),
        pytest.param(None, {}, "no e-mail address", id="no-address"),
        pytest.param("not-an-address", {}, "invalid e-mail address 'not-an-address'", id="invalid"),
        pytest.param(
            "jörg@example.de",
            {},
            "internationalized address 'jörg@example.de' needs SMTPUTF8, which segmail does not send",
            id="internationalized",
        ),
        pytest.param(
            "a@example.com",
            {"addressed": {"a@example.com"}},
            "duplicate address: another contact of this run gets the mail at this address",
            id="duplicate",
        ),
        pytest.param("a@example.com", {}, None, id="mailed"),
    ],
)
def test_skip_reason(email, kwargs, reason):
    args = {"opted_out": False, "opted_out_addresses": set(), "addressed": set(), **kwargs}
    key = email.casefold() if email else None
    assert skip_reason(email=email, email_key=key, **args) == reason


def test_skipped_contacts_get_a_row_with_their_reason_and_the_first_of_an_address_is_mailed():
    contacts = [contact(1), contact(2, "C1@example.com"), contact(3, ""), contact(4, opted_out=True)]
    deliveries, options = select_deliveries(contacts, mailing(), languages=None, max_recipients=None)
    assert [(d[0], d[4], d[5]) for d in deliveries] == [
        (1, DeliveryStatus.PENDING, None),
        (
            2,
            DeliveryStatus.SKIPPED,
            "duplicate address: another contact of this run gets the mail at this address",
        ),
        (3, DeliveryStatus.SKIPPED, "no e-mail address"),
        (4, DeliveryStatus.SKIPPED, "opted out"),
    ]
    assert options == {
        "languages": "all",
        "max_recipients": None,
        "excluded_by_language": 0,
        "over_max_recipients": 0,
    }


def test_an_opt_out_covers_every_contact_sharing_the_address():
    contacts = [contact(1, "shared@example.com"), contact(2, "Shared@example.com", opted_out=True)]
    deliveries, _ = select_deliveries(contacts, mailing(), languages=None, max_recipients=None)
    assert [d[5] for d in deliveries] == [
        "opted out: another contact with this address opted out",
        "opted out",
    ]


def test_a_suppressed_address_is_skipped_with_the_suppressions_reason():
    contacts = [contact(1, suppressed="hard bounce: 550 5.1.1 no such user"), contact(2)]
    deliveries, _ = select_deliveries(contacts, mailing(), languages=None, max_recipients=None)
    assert [(d[4], d[5]) for d in deliveries] == [
        (DeliveryStatus.SKIPPED, "suppressed: hard bounce: 550 5.1.1 no such user"),
        (DeliveryStatus.PENDING, None),
    ]


def test_the_recipient_cap_counts_mails_only_and_leaves_the_rest_without_a_row():
    contacts = [contact(1), contact(2, ""), contact(3), contact(4), contact(5, opted_out=True)]
    deliveries, options = select_deliveries(contacts, mailing(), languages=None, max_recipients=2)
    assert [(d[0], d[4]) for d in deliveries] == [
        (1, DeliveryStatus.PENDING),
        (2, DeliveryStatus.SKIPPED),
        (3, DeliveryStatus.PENDING),
        (5, DeliveryStatus.SKIPPED),  # a skipped row still records why it was not mailed
    ]
    assert (options["max_recipients"], options["over_max_recipients"]) == (2, 1)


def test_the_language_filter_uses_each_contacts_variant():
    contacts = [contact(1, language="de-AT"), contact(2, language="it"), contact(3, language="en")]
    deliveries, options = select_deliveries(contacts, multilingual(), languages=["DE"], max_recipients=None)
    assert [(d[0], d[3]) for d in deliveries] == [(1, "de")]  # it falls back to en and is filtered out
    assert (options["languages"], options["excluded_by_language"]) == (["DE"], 2)
