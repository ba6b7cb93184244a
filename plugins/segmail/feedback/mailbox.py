"""The bounce mailbox: an IMAP folder read in bounded batches, its messages moved, never deleted.

`Mailbox` is all processing needs: the UIDs waiting in the folder, their bytes, and a move into
`segmail/processed` or `segmail/unrecognised`. `ImapMailbox` is the real one (imapclient), configured
by the Airflow connection `segmail_bounces`:

    host, port (993, or 143 with "ssl": false), login, password,
    extra {"folder": "INBOX", "ssl": true, "starttls": false,
           "processed_folder": "segmail/processed", "unrecognised_folder": "segmail/unrecognised"}

The folders are created when missing ("/" stands for the server's hierarchy separator, under its
personal namespace). Messages are fetched with BODY.PEEK[] (they stay unread) and moved with MOVE
(RFC 6851), or where a server lacks it with COPY, \\Deleted and UID EXPUNGE of exactly those UIDs
(plain EXPUNGE only when the server has neither MOVE nor UIDPLUS).
"""

from __future__ import annotations

import ssl
from enum import StrEnum
from typing import Protocol, Self

from segmail.errors import SegmailError
from segmail.settings import ConnectionInfo

DEFAULT_FOLDERS = {"processed": "segmail/processed", "unrecognised": "segmail/unrecognised"}
NOT_CONFIGURED = (
    "no bounce mailbox: create the Airflow connection `{conn_id}` (IMAP host, port, login, password; "
    'extra e.g. {{"folder": "INBOX"}}) for the mailbox that receives bounces, complaints and '
    "mailto unsubscribes"
)


class MailboxNotConfigured(SegmailError):
    pass


class Folder(StrEnum):
    PROCESSED = "processed"
    UNRECOGNISED = "unrecognised"


class Mailbox(Protocol):
    """What reading feedback needs of a mailbox; `ImapMailbox` for real, a fake in unit tests."""

    def __enter__(self) -> Self: ...
    def __exit__(self, *exc_info: object) -> None: ...
    def uids(self) -> list[int]:
        """The messages waiting in the folder, oldest first."""
        ...

    def fetch(self, uids: list[int]) -> dict[int, bytes]: ...
    def move(self, uids: list[int], folder: Folder) -> None: ...


def _flag(value: object, default: bool) -> bool:
    if value is None or value == "":
        return default
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


class ImapMailbox:
    """One IMAP session on the configured folder."""

    def __init__(self, info: ConnectionInfo, *, timeout: float = 60) -> None:
        extra = info.extra or {}
        self.info = info
        self.ssl = _flag(extra.get("ssl"), default=info.port != 143)
        self.starttls = _flag(extra.get("starttls"), default=False)
        self.folder = str(extra.get("folder") or "INBOX")
        self.folder_names = {
            f: str(extra.get(f"{f.value}_folder") or DEFAULT_FOLDERS[f.value]) for f in Folder
        }
        self.timeout = timeout
        self.client = None
        self.targets: dict[Folder, str] = {}

    def __enter__(self) -> Self:
        from imapclient import IMAPClient

        port = self.info.port or (993 if self.ssl else 143)
        context = ssl.create_default_context()
        self.client = IMAPClient(
            self.info.host, port=port, ssl=self.ssl, ssl_context=context, timeout=self.timeout
        )
        try:
            if self.starttls:
                self.client.starttls(context)
            self.client.login(self.info.login, self.info.password)
            self.targets = {folder: self._ensure_folder(name) for folder, name in self.folder_names.items()}
            self.client.select_folder(self.folder)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.client is None:
            return
        try:
            self.client.logout()
        except Exception:  # the session is over either way
            self.client.shutdown()
        self.client = None

    def _ensure_folder(self, name: str) -> str:
        """The server's name for `segmail/processed`: its separator, its personal namespace."""
        prefix, separator = "", "/"
        if self.client.has_capability("NAMESPACE"):
            personal = self.client.namespace().personal
            if personal:
                prefix, separator = personal[0][0] or "", personal[0][1] or "/"
        full = prefix + name.replace("/", separator)
        if not self.client.folder_exists(full):
            self.client.create_folder(full)
            self.client.subscribe_folder(full)
        return full

    def uids(self) -> list[int]:
        return sorted(self.client.search("ALL"))

    def fetch(self, uids: list[int]) -> dict[int, bytes]:
        if not uids:
            return {}
        found = self.client.fetch(uids, [b"BODY.PEEK[]"])
        return {uid: data[b"BODY[]"] for uid, data in found.items() if b"BODY[]" in data}

    def move(self, uids: list[int], folder: Folder) -> None:
        if not uids:
            return
        target = self.targets[folder]
        if self.client.has_capability("MOVE"):
            self.client.move(uids, target)
            return
        from imapclient import DELETED

        self.client.copy(uids, target)
        self.client.add_flags(uids, [DELETED])
        if self.client.has_capability("UIDPLUS"):
            self.client.uid_expunge(uids)
        else:
            self.client.expunge()


def configured_mailbox() -> ImapMailbox:
    """The IMAP mailbox of the connection `segmail_bounces` (SEGMAIL_BOUNCES_CONN_ID)."""
    from segmail import settings

    conn_id = settings.current().bounces_conn_id
    info = settings.connection(conn_id)
    if info is None or not info.host:
        raise MailboxNotConfigured(NOT_CONFIGURED.format(conn_id=conn_id))
    return ImapMailbox(info)
