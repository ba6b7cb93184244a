"""The child processes of `make airflow`, each in a session of its own, stopped together.

A terminal's Ctrl-C signals its whole foreground process group at once: `airflow standalone` then
dies in the middle of stopping its components, and its scheduler, LocalExecutor workers and
triggerer live on against the SQLite database. So every child starts in a new session (Ctrl-C
reaches only the launcher, which decides), and `stop()` ends everything that was started: SIGTERM
to each child's process group and to every descendant seen (task processes make groups of their
own), up to `grace` seconds to finish, then SIGKILL for whatever is left.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from contextlib import suppress
from dataclasses import dataclass

import psutil

GRACE_SECONDS = 10.0
_POLL = 0.2


class Children:
    def __init__(self) -> None:
        self.processes: list[subprocess.Popen] = []
        self.hurry = False  # set by a second Ctrl-C: kill at once

    def start(self, argv: list[str], **popen: object) -> subprocess.Popen:
        process = subprocess.Popen(argv, start_new_session=True, stdin=subprocess.DEVNULL, **popen)
        self.processes.append(process)
        return process

    def descendants(self) -> set[psutil.Process]:
        """Every live process started from here: the children, what is still attached below them,
        and what is left in their process groups (orphans of a parent that died first)."""
        found: set[psutil.Process] = set()
        for process in self.processes:
            with suppress(psutil.Error):
                root = psutil.Process(process.pid)
                found |= {root, *root.children(recursive=True)}
        return found | _group_members({process.pid for process in self.processes})

    def _signal(self, signum: int, known: set[psutil.Process]) -> None:
        for member in known:
            with suppress(psutil.Error):
                member.send_signal(signum)  # psutil checks that the pid still names the same process

    def _running(self, known: set[psutil.Process]) -> bool:
        for process in self.processes:
            process.poll()  # reap our own children
        return any(_is_alive(member) for member in known)

    def stop(self, *, grace: float = GRACE_SECONDS) -> Stopped:
        """Stop everything started here, in at most `grace` seconds and a little."""
        started = time.monotonic()
        known = self.descendants()
        self._signal(signal.SIGTERM, known)
        while self._running(known) and time.monotonic() - started < grace and not self.hurry:
            time.sleep(_POLL)
            known |= self.descendants()  # started while stopping
        killed = [_describe(p) for p in known | self.descendants() if _is_alive(p)]
        if killed:
            self._signal(signal.SIGKILL, known | self.descendants())
            while self._running(known) and time.monotonic() - started < grace + 5:
                time.sleep(_POLL)
        for process in self.processes:  # a child that died after `_running`'s last poll is reaped too
            process.poll()
        return Stopped(seconds=time.monotonic() - started, killed=sorted(killed))


@dataclass(frozen=True)
class Stopped:
    seconds: float
    killed: list[str]  # what ignored SIGTERM for the whole grace period

    def __str__(self) -> str:
        forced = f"; killed after the grace period: {', '.join(self.killed)}" if self.killed else ""
        return f"stopped in {self.seconds:.1f} s{forced}"


def _describe(process: psutil.Process) -> str:
    try:
        return f"{' '.join(process.cmdline()[1:3]) or process.name()} ({process.pid})"
    except psutil.Error:
        return str(process.pid)


def _is_alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _group_members(groups: set[int]) -> set[psutil.Process]:
    members = set()
    for process in psutil.process_iter():
        with suppress(psutil.Error, OSError):
            if os.getpgid(process.pid) in groups:
                members.add(process)
    return members
