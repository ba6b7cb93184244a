"""The IMAP mailbox against a fake IMAPClient: folders in the server's namespace and separator,
MOVE when the server has it, else COPY + \\Deleted + UID EXPUNGE of exactly those messages."""

from __future__ import annotations

import json

import pytest
from segmail.feedback import mailbox as mailboxes
from segmail.feedback.mailbox import Folder, ImapMailbox, MailboxNotConfigured
from segmail.settings import ConnectionInfo


class FakeClient:
    def __init__(self, capabilities: set[bytes], namespace=(("INBOX.", "."),)) -> None:
        self.capabilities = capabilities
        self.personal = namespace
        self.folders = {"INBOX"}
        self.calls: list[tuple] = []

    def has_capability(self, name: str) -> bool:
        return name.encode() in self.capabilities

    def namespace(self):
        return type("Namespaces", (), {"personal": self.personal})()

    def folder_exists(self, name: str) -> bool:
        return name in self.folders

    def create_folder(self, name: str) -> None:
        self.folders.add(name)
        self.calls.append(("create", name))

    def subscribe_folder(self, name: str) -> None:
        self.calls.append(("subscribe", name))

    def __getattr__(self, name: str):
        return lambda *args, **kwargs: self.calls.append((name, *args))


def opened(client: FakeClient) -> ImapMailbox:
    box = ImapMailbox(ConnectionInfo("segmail_bounces", host="imap.example", login="u", password="p"))
    box.client = client
    box.targets = {folder: box._ensure_folder(name) for folder, name in box.folder_names.items()}
    return box


def test_folders_are_created_in_the_servers_namespace_with_its_separator():
    client = FakeClient({b"NAMESPACE", b"MOVE"})
    box = opened(client)
    assert box.targets == {
        Folder.PROCESSED: "INBOX.segmail.processed",
        Folder.UNRECOGNISED: "INBOX.segmail.unrecognised",
    }
    assert ("subscribe", "INBOX.segmail.processed") in client.calls
    opened(client)  # a second session finds them
    assert [c for c in client.calls if c[0] == "create"] == [
        ("create", "INBOX.segmail.processed"),
        ("create", "INBOX.segmail.unrecognised"),
    ]


def test_move_is_one_command_where_the_server_has_move():
    client = FakeClient({b"MOVE"})
    opened(client).move([3, 4], Folder.PROCESSED)
    assert client.calls[-1] == ("move", [3, 4], "segmail/processed")


def test_without_move_the_messages_are_copied_flagged_and_expunged_by_uid():
    client = FakeClient({b"UIDPLUS"})
    opened(client).move([7], Folder.UNRECOGNISED)
    assert [c[0] for c in client.calls[-3:]] == ["copy", "add_flags", "uid_expunge"]
    assert client.calls[-1] == ("uid_expunge", [7])


def test_without_move_and_uidplus_a_plain_expunge_follows_the_copy():
    client = FakeClient(set())
    opened(client).move([7], Folder.UNRECOGNISED)
    assert [c[0] for c in client.calls[-3:]] == ["copy", "add_flags", "expunge"]


def test_nothing_to_move_sends_nothing():
    client = FakeClient({b"MOVE"})
    box = opened(client)
    before = list(client.calls)
    box.move([], Folder.PROCESSED)
    assert client.calls == before


@pytest.mark.parametrize(
    ("port", "extra", "ssl"),
    [
        pytest.param(None, {}, True, id="default-ssl"),
        pytest.param(143, {}, False, id="port-143-plain"),
        pytest.param(1143, {"ssl": "false"}, False, id="uri-form-false"),
        pytest.param(143, {"ssl": True}, True, id="explicit-ssl"),
    ],
)
def test_ssl_follows_the_connection(port, extra, ssl):
    assert ImapMailbox(ConnectionInfo("b", host="h", port=port, extra=extra)).ssl is ssl


def test_folder_names_come_from_the_connection_extra():
    info = ConnectionInfo("b", host="h", extra={"folder": "Bounces", "processed_folder": "Archive/done"})
    box = ImapMailbox(info)
    assert box.folder == "Bounces" and box.folder_names[Folder.PROCESSED] == "Archive/done"


def test_without_a_connection_it_says_what_to_create(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_SEGMAIL_BOUNCES", raising=False)
    monkeypatch.setattr("segmail.settings.connection", lambda *args, **kwargs: None)
    with pytest.raises(MailboxNotConfigured, match="create the Airflow connection `segmail_bounces`"):
        mailboxes.configured_mailbox()


def test_the_connection_is_read_from_airflow_conn(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_SEGMAIL_BOUNCES",
        json.dumps({"conn_type": "imap", "host": "imap.example", "port": 993, "login": "b", "password": "s"}),
    )
    box = mailboxes.configured_mailbox()
    assert (box.info.host, box.info.port, box.ssl, box.folder) == ("imap.example", 993, True, "INBOX")
