"""DKIM signing (RFC 6376) in segmail, so mails are aligned with the From domain whatever relays them.

`h=` covers the headers mailbox providers look at, including List-Id, List-Unsubscribe and
List-Unsubscribe-Post (RFC 8058 §3.1 asks for the last two to be signed). RSA keys come as PEM,
Ed25519 keys (RFC 8463) as the base64 of their 32-byte seed, from an Airflow connection's password.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from segmail.errors import SegmailError

SIGNED_HEADERS = (
    b"From",
    b"To",
    b"Subject",
    b"Date",
    b"Message-ID",
    b"Reply-To",
    b"MIME-Version",
    b"Content-Type",
    b"List-Id",
    b"List-Unsubscribe",
    b"List-Unsubscribe-Post",
)


@dataclass(frozen=True)
class DkimKey:
    domain: str
    selector: str
    private_key: bytes

    @property
    def algorithm(self) -> bytes:
        return b"rsa-sha256" if self.private_key.lstrip().startswith(b"-----BEGIN") else b"ed25519-sha256"


def dkim_key_from_connection(*, domain: str, selector: str, key_conn_id: str) -> DkimKey:
    """The private key from the connection's password (a secrets backend keeps it out of the repo)."""
    from segmail import settings

    info = settings.connection(key_conn_id)
    if info is None or not info.password:
        raise SegmailError(
            f"DKIM key connection {key_conn_id!r} is missing or has no password (the private key)"
        )
    return DkimKey(domain=domain, selector=selector, private_key=info.password.encode())


def sign(message: bytes, key: DkimKey, *, now: float | None = None) -> bytes:
    """The message with a DKIM-Signature header in front (relaxed/relaxed canonicalization).

    Parsing, canonicalization, the header hash and folding are dkimpy's own (its `DKIM.sign`, step
    by step); only the signature is made by `cryptography` (OpenSSL), with the key parsed once per
    process: dkimpy's pure-Python RSA manages ~200 signatures/s, OpenSSL several times that.
    """
    import dkim

    try:
        signer = _signer(key.private_key, key.algorithm)
        headers, body = dkim.rfc822_parse(message)
    except (ValueError, TypeError, dkim.DKIMException) as exc:
        raise SegmailError(f"DKIM signing for {key.domain} failed: {exc}") from None
    policy = dkim.CanonicalizationPolicy.from_c_value(b"relaxed/relaxed")
    present = {name.lower() for name, _ in headers}
    included = tuple(name.lower() for name in SIGNED_HEADERS if name.lower() in present)
    fields = [
        (b"v", b"1"),
        (b"a", key.algorithm),
        (b"c", b"relaxed/relaxed"),
        (b"d", key.domain.encode()),
        (b"i", b"@" + key.domain.encode()),
        (b"q", b"dns/txt"),
        (b"s", key.selector.encode()),
        (b"t", str(int(time.time() if now is None else now)).encode()),
        (b"h", b" : ".join(included)),
        (b"bh", base64.b64encode(hashlib.sha256(policy.canonicalize_body(body)).digest())),
        (b"b", b"0" * 60),  # folds b= onto its own line, as dkimpy does
    ]
    value = dkim.fold(b"; ".join(b"=".join(field) for field in fields), namelen=14, linesep=b"\r\n")
    hashed = dkim.HashThrough(hashlib.sha256(), False)
    unsigned = (b"DKIM-Signature", b" " + dkim.RE_BTAG.sub(b"\\1", value))
    dkim.hash_headers(hashed, policy, policy.canonicalize_headers(headers), included, unsigned, dict(fields))
    fields[-1] = (b"b", base64.b64encode(signer(hashed.digest())))
    value = dkim.fold(b"; ".join(b"=".join(field) for field in fields) + b"\r\n", namelen=14, linesep=b"\r\n")
    return b"DKIM-Signature: " + value + message


@functools.lru_cache(maxsize=16)
def _signer(private_key: bytes, algorithm: bytes) -> Callable[[bytes], bytes]:
    """Signs a SHA-256 digest: RSASSA-PKCS1-v1_5 (rsa-sha256), or Ed25519 over the digest
    (ed25519-sha256, RFC 8463)."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa, utils

    if algorithm == b"ed25519-sha256":
        return ed25519.Ed25519PrivateKey.from_private_bytes(base64.b64decode(private_key, validate=True)).sign
    loaded = serialization.load_pem_private_key(private_key, password=None)
    if not isinstance(loaded, rsa.RSAPrivateKey):
        raise ValueError("the PEM key is not an RSA key")
    pkcs1, prehashed = padding.PKCS1v15(), utils.Prehashed(hashes.SHA256())
    return lambda digest: loaded.sign(digest, pkcs1, prehashed)
