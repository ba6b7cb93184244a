"""`make airflow`'s children are stopped together: the whole tree, also what left its process
group or outlived its parent, within the grace period and then by force."""

from __future__ import annotations

import sys
import time

import psutil
from segmail.dev.processes import Children

# A parent that ignores SIGTERM, with a child that made its own session (as Airflow's task
# processes make their own groups) and a child whose parent exits (an orphan in the group).
TREE = """
import os, signal, subprocess, sys, time
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"], start_new_session=True)
subprocess.Popen([sys.executable, "-c",
    "import subprocess, sys; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'])"])
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("ready", flush=True)
time.sleep(300)
"""


def _tree_of(children: Children, expected: int, *, seconds: float = 20) -> set[psutil.Process]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = {p for p in children.descendants() if p.status() != psutil.STATUS_ZOMBIE}
        if len(found) >= expected:
            return found
        time.sleep(0.1)
    raise AssertionError(f"expected {expected} processes, found {children.descendants()}")


def test_stop_ends_the_whole_tree_by_force_after_the_grace_period():
    children = Children()
    parent = children.start([sys.executable, "-c", TREE], stdout=-1, text=True)
    assert parent.stdout.readline().strip() == "ready"
    tree = _tree_of(children, 3)  # the parent, the own-session child, the orphan
    stopped = children.stop(grace=1.5)
    assert 1.5 <= stopped.seconds < 5
    assert len(stopped.killed) == 1 and str(stopped).endswith(
        f"killed after the grace period: -c {TREE} ({parent.pid})"
    )
    assert not [p for p in tree if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert parent.returncode == -9  # it ignored SIGTERM


def test_stop_is_quick_when_everything_ends_on_sigterm():
    children = Children()
    sleepers = [children.start([sys.executable, "-c", "import time; time.sleep(300)"]) for _ in range(3)]
    _tree_of(children, 3)
    stopped = children.stop(grace=10)
    assert stopped.seconds < 3 and not stopped.killed
    assert [s.returncode for s in sleepers] == [-15, -15, -15]
