"""DKIM signing (RFC 6376) in segmail, so mails are aligned with the From domain whatever relays them.

`h=` covers the headers mailbox providers look at, including List-Id, List-Unsubscribe and
List-Unsubscribe-Post (RFC 8058 §3.1 asks for the last two to be signed). RSA keys come as PEM,
Ed25519 keys (RFC 8463) as the base64 of their 32-byte seed, from an Airflow connection's password.
"""

from __future__ import annotations

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


def sign(message: bytes, key: DkimKey) -> bytes:
    """The message with a DKIM-Signature header in front (relaxed/relaxed canonicalization)."""
    import dkim

    present = {line.split(b":", 1)[0].strip().lower() for line in _header_lines(message)}
    headers = [name for name in SIGNED_HEADERS if name.lower() in present]
    try:
        signature = dkim.sign(
            message,
            key.selector.encode(),
            key.domain.encode(),
            key.private_key,
            canonicalize=(b"relaxed", b"relaxed"),
            signature_algorithm=key.algorithm,
            include_headers=headers,
        )
    except dkim.DKIMException as exc:
        raise SegmailError(f"DKIM signing for {key.domain} failed: {exc}") from None
    return signature + message


def _header_lines(message: bytes) -> list[bytes]:
    head = message.split(b"\r\n\r\n", 1)[0]
    return [line for line in head.split(b"\r\n") if line and not line[:1].isspace()]
