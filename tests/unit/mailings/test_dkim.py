"""DKIM signatures verify with the public key (dkimpy's verifier, DNS answered by the test)."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from segmail.errors import SegmailError
from segmail.mailings.dkim import DkimKey, sign

MESSAGE = (
    b"From: Autohaus Demo <newsletter@autohaus-demo.example>\r\n"
    b"To: Anna <anna@example.com>\r\n"
    b"Subject: =?utf-8?q?Fr=C3=BChjahr?=\r\n"
    b"Date: Sat, 28 Nov 2026 08:00:00 +0000\r\n"
    b"Message-ID: <1.2@autohaus-demo.example>\r\n"
    b"List-Id: Newsletter <newsletter.autohaus-demo.example>\r\n"
    b"List-Unsubscribe: <https://u.example/u/abc>, <mailto:unsubscribe+abc@autohaus-demo.example>\r\n"
    b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"Hallo Anna\r\n"
)


def rsa_key() -> tuple[DkimKey, bytes]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    public = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)
    return DkimKey("autohaus-demo.example", "s2026", pem), record


def ed25519_key() -> tuple[DkimKey, bytes]:
    private = ed25519.Ed25519PrivateKey.generate()
    seed = private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    public = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    record = b"v=DKIM1; k=ed25519; p=" + base64.b64encode(public)
    return DkimKey("autohaus-demo.example", "ed2026", base64.b64encode(seed)), record


def verify(message: bytes, key: DkimKey, record: bytes) -> bool:
    import dkim

    expected = f"{key.selector}._domainkey.{key.domain}.".encode()

    def dns(name: bytes, timeout: int = 5) -> bytes | None:
        return record if name == expected else None

    return dkim.verify(message, dnsfunc=dns)


@pytest.mark.parametrize("make_key", [rsa_key, ed25519_key], ids=["rsa-2048", "ed25519"])
def test_signatures_verify_and_cover_the_list_headers(make_key):
    key, record = make_key()
    signed = sign(MESSAGE, key)
    assert signed.startswith(b"DKIM-Signature:")
    header = signed.split(b"\r\n\r\n", 1)[0].split(b"DKIM-Signature:", 1)[1].split(b"\r\nFrom:")[0]
    signed_names = b"".join(header.split()).split(b"h=")[1].split(b";")[0].lower().split(b":")
    for name in (b"from", b"to", b"subject", b"date", b"message-id", b"list-id"):
        assert name in signed_names
    assert b"list-unsubscribe" in signed_names and b"list-unsubscribe-post" in signed_names
    assert verify(signed, key, record)


@pytest.mark.parametrize("make_key", [rsa_key, ed25519_key], ids=["rsa-2048", "ed25519"])
def test_an_altered_message_does_not_verify(make_key):
    key, record = make_key()
    signed = sign(MESSAGE, key)
    assert not verify(signed.replace(b"Hallo Anna", b"Hallo Bob!"), key, record)
    assert not verify(
        signed.replace(b"List-Unsubscribe-Post: List-Unsubscribe=One-Click", b"X-Other: 1"), key, record
    )


def test_a_broken_key_is_a_clear_error():
    with pytest.raises(SegmailError, match="DKIM signing for autohaus-demo.example failed"):
        sign(
            MESSAGE,
            DkimKey(
                "autohaus-demo.example",
                "s1",
                b"-----BEGIN RSA PRIVATE KEY-----\nnope\n-----END RSA PRIVATE KEY-----\n",
            ),
        )


@pytest.mark.parametrize("make_key", [rsa_key, ed25519_key], ids=["rsa-2048", "ed25519"])
def test_the_signature_is_byte_for_byte_what_dkimpy_makes(make_key):
    """Only the signing primitive is OpenSSL's; parsing, canonicalization and folding are dkimpy's."""
    from unittest import mock

    import dkim
    from segmail.mailings.dkim import SIGNED_HEADERS

    key, _ = make_key()
    with mock.patch("time.time", return_value=1795829369):
        expected = dkim.sign(
            MESSAGE,
            key.selector.encode(),
            key.domain.encode(),
            key.private_key,
            canonicalize=(b"relaxed", b"relaxed"),
            signature_algorithm=key.algorithm,
            include_headers=[name for name in SIGNED_HEADERS if b"\r\n" + name + b":" in b"\r\n" + MESSAGE],
        )
    assert sign(MESSAGE, key, now=1795829369) == expected + MESSAGE
