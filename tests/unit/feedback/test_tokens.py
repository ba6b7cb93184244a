"""Unsubscribe and bounce tokens: signed, unforgeable, rotatable, short and case-safe."""

from __future__ import annotations

import re

import pytest
from segmail.errors import SegmailError
from segmail.feedback.tokens import InvalidToken, TokenPurpose, TokenSigner

KEY = b"k" * 32
OTHER = b"o" * 32
NOW = 1_795_000_000.0


def test_a_signed_token_verifies_to_its_delivery_and_purpose():
    signer = TokenSigner((KEY,))
    token = signer.sign(TokenPurpose.UNSUBSCRIBE, 123_456, now=NOW)
    verified = signer.verify(token, now=NOW)
    assert verified.delivery_id == 123_456
    assert verified.purpose is TokenPurpose.UNSUBSCRIBE


def test_tokens_fit_an_address_local_part_and_survive_case_folding():
    signer = TokenSigner((KEY,))
    token = signer.sign(TokenPurpose.BOUNCE, 2**40, now=NOW)
    assert re.fullmatch(r"[a-z0-9.]+", token)
    assert len("unsubscribe+" + token) <= 64
    assert signer.verify(token.upper(), now=NOW).delivery_id == 2**40


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda t: t.replace("u.", "b.", 1), id="purpose-changed"),
        pytest.param(lambda t: "u.4." + t.split(".", 2)[2], id="other-delivery"),
        pytest.param(lambda t: t[:-1] + ("a" if t[-1] != "a" else "b"), id="signature-altered"),
        pytest.param(lambda t: t + "x", id="too-long-signature"),
        pytest.param(lambda t: "", id="empty"),
        pytest.param(lambda t: "u.1.1." + "a" * 26, id="forged"),
        pytest.param(lambda t: t + "\x00", id="nul"),
        pytest.param(lambda t: "x" * 5000, id="huge"),
    ],
)
def test_altered_or_forged_tokens_are_refused(tamper):
    signer = TokenSigner((KEY,))
    token = signer.sign(TokenPurpose.UNSUBSCRIBE, 3, now=NOW)
    with pytest.raises(InvalidToken, match="not valid"):
        signer.verify(tamper(token), now=NOW)


def test_a_token_from_another_key_is_refused():
    token = TokenSigner((OTHER,)).sign(TokenPurpose.UNSUBSCRIBE, 3, now=NOW)
    with pytest.raises(InvalidToken):
        TokenSigner((KEY,)).verify(token, now=NOW)


def test_after_rotation_the_previous_key_still_verifies_and_the_new_one_signs():
    old_token = TokenSigner((OTHER,)).sign(TokenPurpose.UNSUBSCRIBE, 9, now=NOW)
    rotated = TokenSigner((KEY, OTHER))
    assert rotated.verify(old_token, now=NOW).delivery_id == 9
    new_token = rotated.sign(TokenPurpose.UNSUBSCRIBE, 9, now=NOW)
    assert TokenSigner((KEY,)).verify(new_token, now=NOW).delivery_id == 9
    with pytest.raises(InvalidToken):
        TokenSigner((OTHER,)).verify(new_token, now=NOW)


def test_an_expired_token_is_refused():
    signer = TokenSigner((KEY,), max_age_days=30)
    token = signer.sign(TokenPurpose.UNSUBSCRIBE, 3, now=NOW)
    assert signer.verify(token, now=NOW + 29 * 86_400).delivery_id == 3
    with pytest.raises(InvalidToken, match="expired"):
        signer.verify(token, now=NOW + 32 * 86_400)


@pytest.mark.parametrize("keys", [(), (b"short",)], ids=["no-key", "short-key"])
def test_a_missing_or_weak_key_is_a_clear_error(keys):
    with pytest.raises(SegmailError, match="signing key"):
        TokenSigner(keys)


def test_the_configured_links_carry_the_bounce_domain_for_verp(monkeypatch):
    from segmail.feedback.links import unsubscribe_links

    monkeypatch.setenv("SEGMAIL_UNSUBSCRIBE_MAILTO", "unsubscribe@shop.example")
    monkeypatch.setenv("SEGMAIL_BOUNCE_DOMAIN", "bounces.shop.example")
    monkeypatch.setenv("SEGMAIL_BOUNCE_LOCAL_PART", "return")
    monkeypatch.setenv(
        "AIRFLOW_CONN_SEGMAIL_SIGNING", '{"conn_type": "generic", "password": "' + "k" * 32 + '"}'
    )
    return_path = unsubscribe_links().return_path(42)
    assert return_path.startswith("return+b.") and return_path.endswith("@bounces.shop.example")
    monkeypatch.delenv("SEGMAIL_BOUNCE_DOMAIN")
    assert unsubscribe_links().return_path(42) is None
