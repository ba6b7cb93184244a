"""Private Postfix and Dovecot instances on loopback ports: the real MTA and IMAP mailbox of the
feedback tests and `make bench-feedback`.

`MailServers` starts both from Debian's binaries with their own configuration, queue and Maildir
under one temporary directory and stops exactly what it started; nothing of the system's own
Postfix or Dovecot (configuration, services, spool) is touched. Postfix needs root (its master
process drops privileges per daemon), so this runs where the test machine runs: as root.

The relay segmail sends to accepts mail for `recipients_domain`, whose listed users get a Maildir;
unknown users are accepted and then bounced by Postfix itself (`smtpd_reject_unlisted_recipient =
no`: a real, asynchronous DSN). A "full" user is routed to a second Postfix smtpd that answers
`452 4.2.2 Mailbox full`; with `maximal_queue_lifetime = 0` Postfix gives up after that first try
and sends a DSN with the 4.2.2 status (a soft bounce). Mail for the feedback domains (the VERP
bounce domain, the mailto unsubscribe domain, the From domain) lands in one Maildir, which Dovecot
serves over IMAP with a static password.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from segmail.dev.smtpsink import free_port

POSTFIX = "/usr/sbin/postfix"
DOVECOT = "/usr/sbin/dovecot"
MAILBOX_UID = 65534  # nobody: owns the Maildirs; Postfix's virtual agent and Dovecot's imap run as it
IMAP_USER = "feedback"
IMAP_PASSWORD = "feedback-secret"  # a throwaway instance on loopback only
_QUEUES = ("maildrop", "incoming", "active", "deferred", "hold")


class MailServerError(RuntimeError):
    pass


def missing() -> str | None:
    """Why the servers cannot run here (binaries missing, not root), or None."""
    absent = [path for path in (POSTFIX, DOVECOT) if not os.path.exists(path)]
    if absent:
        return f"missing {', '.join(absent)} (scripts/ensure-debian.sh installs postfix and dovecot-imapd)"
    if os.geteuid() != 0:
        return "Postfix and Dovecot instances need root"
    return None


def _run(*args: str) -> None:
    """Run a server's control command. Its output goes to a temporary file, not a pipe: a daemon
    that forks keeps a pipe open and a reader would wait for it forever."""
    with tempfile.TemporaryFile("w+") as output:
        result = subprocess.run(
            args, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT, timeout=60
        )
        if result.returncode != 0:
            output.seek(0)
            raise MailServerError(f"{' '.join(args)} failed: {output.read()}")


@dataclass
class MailServers:
    """Postfix (relay on `smtp_port`) and Dovecot (IMAP on `imap_port`) under `root`."""

    feedback_domains: tuple[str, ...]
    users: tuple[str, ...] = ("good",)
    full_users: tuple[str, ...] = ("full",)
    recipients_domain: str = "recipients.example"  # .example: addresses segmail's checks accept
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="segmail-mail-")))
    smtp_port: int = field(default_factory=free_port)
    full_port: int = field(default_factory=free_port)
    imap_port: int = field(default_factory=free_port)
    _started: list[str] = field(default_factory=list)

    @property
    def maildir(self) -> Path:
        """The feedback Maildir that Dovecot serves (its INBOX)."""
        return self.root / "mail" / "feedback"

    def user_maildir(self, user: str) -> Path:
        return self.root / "mail" / self.recipients_domain / user

    @property
    def smtp_uri(self) -> str:
        """An Airflow connection URI for the relay (plain SMTP on loopback)."""
        return f"smtp://127.0.0.1:{self.smtp_port}?disable_ssl=true&disable_tls=true&timeout=10"

    def imap_connection(self, **extra: object) -> dict:
        """An Airflow connection (JSON form) for the feedback mailbox."""
        return {
            "conn_type": "imap",
            "host": "127.0.0.1",
            "port": self.imap_port,
            "login": IMAP_USER,
            "password": IMAP_PASSWORD,
            "extra": {"ssl": False, **extra},
        }

    # ---------------------------------------------------------------- lifecycle

    def __enter__(self) -> MailServers:
        reason = missing()
        if reason:
            raise MailServerError(reason)
        self.root.chmod(0o755)  # the mailbox user must reach the Maildirs below it
        try:
            self._start_postfix()
            self._start_dovecot()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        """Stop what was started (the two master processes, found by their pid files), then remove
        the directory with the queue, the Maildirs and the logs."""
        postfix_pid = _pid(self.root / "postfix-queue" / "pid" / "master.pid")
        dovecot_pid = _pid(self.root / "dovecot-run" / "master.pid")
        if "postfix" in self._started:
            subprocess.run(
                [POSTFIX, "-c", str(self.root / "postfix"), "stop"], capture_output=True, timeout=60
            )
        if "dovecot" in self._started and dovecot_pid:
            os.kill(dovecot_pid, signal.SIGTERM)
        self._started.clear()
        for pid in (postfix_pid, dovecot_pid):
            if pid:
                _wait_for_exit(pid)
        shutil.rmtree(self.root, ignore_errors=True)

    def _start_postfix(self) -> None:
        config = self.root / "postfix"
        config.mkdir()
        (self.root / "postfix-queue").mkdir()
        data = self.root / "postfix-data"
        data.mkdir()
        owner = pwd.getpwnam("postfix")
        os.chown(data, owner.pw_uid, owner.pw_gid)
        mail = self.root / "mail"
        mail.mkdir()
        os.chown(mail, MAILBOX_UID, MAILBOX_UID)
        (config / "main.cf").write_text(self._main_cf())
        (config / "master.cf").write_text(self._master_cf())
        (config / "vmailbox").write_text(self._mailboxes())
        (config / "transport").write_text(
            "".join(
                f"{u}@{self.recipients_domain} smtp:[127.0.0.1]:{self.full_port}\n" for u in self.full_users
            )
        )
        (config / "full").write_text(
            "".join(f"{u}@{self.recipients_domain} 452 4.2.2 Mailbox full\n" for u in self.full_users)
        )
        self._started.append("postfix")
        try:
            _run(POSTFIX, "-c", str(config), "start")
        except MailServerError as exc:  # Postfix writes its reasons to the log, not to a pipe
            raise MailServerError(f"{exc}\n{self.log_tail()}") from None
        _wait_for_port(self.smtp_port, self.root / "maillog")

    def _mailboxes(self) -> str:
        lines = [f"{user}@{self.recipients_domain} {self.recipients_domain}/{user}/" for user in self.users]
        lines += [f"@{domain} feedback/" for domain in self.feedback_domains]
        return "\n".join(lines) + "\n"

    def _main_cf(self) -> str:
        root = self.root
        domains = ", ".join((self.recipients_domain, *self.feedback_domains))
        return f"""\
compatibility_level = 3.6
queue_directory = {root}/postfix-queue
data_directory = {root}/postfix-data
maillog_file = {root}/maillog
maillog_file_prefixes = {root}
myhostname = relay.segmail.example
mydomain = segmail.example
myorigin = $myhostname
mydestination =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
local_recipient_maps =
smtputf8_enable = no
biff = no
smtp_host_lookup = native
default_transport = error:5.7.1 the test relay sends nothing outside its test domains
virtual_mailbox_domains = {domains}
virtual_mailbox_base = {root}/mail
virtual_mailbox_maps = texthash:{root}/postfix/vmailbox
virtual_uid_maps = static:{MAILBOX_UID}
virtual_gid_maps = static:{MAILBOX_UID}
virtual_minimum_uid = 100
recipient_delimiter = +
transport_maps = texthash:{root}/postfix/transport
smtpd_reject_unlisted_recipient = no
maximal_queue_lifetime = 0
bounce_queue_lifetime = 0
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
"""

    def _master_cf(self) -> str:
        full_smtpd = (
            f"127.0.0.1:{self.full_port} inet n - n - - smtpd\n"
            "  -o myhostname=mx.recipients.example\n"
            "  -o smtpd_recipient_restrictions=check_recipient_access,texthash:"
            f"{self.root}/postfix/full,reject\n"
        )
        services = [
            f"127.0.0.1:{self.smtp_port} inet n - n - - smtpd",
            "pickup unix n - n 60 1 pickup",
            "cleanup unix n - n - 0 cleanup",
            "qmgr unix n - n 300 1 qmgr",
            "rewrite unix - - n - - trivial-rewrite",
            "bounce unix - - n - 0 bounce",
            "defer unix - - n - 0 bounce",
            "trace unix - - n - 0 bounce",
            "verify unix - - n - 1 verify",
            "flush unix n - n 1000? 0 flush",
            "proxymap unix - - n - - proxymap",
            "smtp unix - - n - - smtp",
            "relay unix - - n - - smtp",
            "showq unix n - n - - showq",
            "error unix - - n - - error",
            "retry unix - - n - - error",
            "discard unix - - n - - discard",
            "virtual unix - n n - - virtual",
            "anvil unix - - n - 1 anvil",
            "scache unix - - n - 1 scache",
            "postlog unix-dgram n - n - 1 postlogd",
        ]
        return "\n".join(services) + "\n" + full_smtpd

    def _start_dovecot(self) -> None:
        config = self.root / "dovecot.conf"
        config.write_text(self._dovecot_conf())
        self._started.append("dovecot")
        _run(DOVECOT, "-c", str(config))
        _wait_for_port(self.imap_port, self.root / "dovecot.log")

    def _dovecot_conf(self) -> str:
        root = self.root
        return f"""\
base_dir = {root}/dovecot-run
state_dir = {root}/dovecot-state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 1
mail_location = maildir:~
namespace inbox {{
  inbox = yes
  separator = /
}}
passdb {{
  driver = static
  args = user={IMAP_USER} password={IMAP_PASSWORD}
}}
userdb {{
  driver = static
  args = uid={MAILBOX_UID} gid={MAILBOX_UID} home={self.maildir}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service stats {{
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
"""

    # ---------------------------------------------------------------- waiting

    def queued(self) -> int:
        """Messages still in Postfix's queues."""
        queue = self.root / "postfix-queue"
        return sum(1 for name in _QUEUES for path in (queue / name).rglob("*") if path.is_file())

    def wait_idle(self, *, timeout: float = 60) -> None:
        """Until Postfix has delivered or bounced everything it accepted (its queues stay empty)."""
        deadline = time.monotonic() + timeout
        quiet = 0
        while quiet < 3:
            if time.monotonic() > deadline:
                raise MailServerError(f"Postfix queue not empty after {timeout}s:\n{self.log_tail()}")
            quiet = quiet + 1 if self.queued() == 0 else 0
            time.sleep(0.2)

    def log_tail(self, lines: int = 40) -> str:
        path = self.root / "maillog"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


def _wait_for_port(port: int, log: Path, *, timeout: float = 30) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                text = log.read_text(errors="replace")[-3000:] if log.exists() else ""
                raise MailServerError(f"nothing listens on 127.0.0.1:{port}:\n{text}") from None
            time.sleep(0.1)


def _pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _running(pid: int) -> bool:
    """True while the process exists and is not a zombie (nobody may reap a daemon here soon)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _wait_for_exit(pid: int, *, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while _running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
