"""A real DNS server for the DNS checks: Debian's dnsmasq on a loopback port, answering only the
TXT records given (no upstream, no hosts file), required under CI=true."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from segmail.dev.smtpsink import free_port
from segmail.mailings.dns_check import resolver_lookup

DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
DOMAIN = "autohaus-demo.example"


@contextmanager
def dnsmasq(txt_records: dict[str, str], *, local: str = DOMAIN) -> Iterator[int]:
    """Serve `name -> TXT value` for names under `local` (the rest of it: NXDOMAIN); yields the port."""
    if not os.path.exists(DNSMASQ):
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but dnsmasq is missing (scripts/ensure-debian.sh installs it)")
        pytest.skip("dnsmasq not installed")
    port = free_port()
    user = "root" if os.geteuid() == 0 else os.environ.get("USER", "nobody")
    records = [f"--txt-record={name},{value}" for name, value in txt_records.items()]
    process = subprocess.Popen(
        [DNSMASQ, "--keep-in-foreground", "--no-resolv", "--no-hosts", "--bind-interfaces"]
        + ["--listen-address=127.0.0.1", f"--port={port}", f"--user={user}", "--pid-file="]
        + [*records, f"--local=/{local}/"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_until_it_answers(process, port, next(iter(txt_records)))
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


def _wait_until_it_answers(process: subprocess.Popen, port: int, name: str) -> None:
    lookup = resolver_lookup("127.0.0.1", port, timeout=2)
    deadline = time.monotonic() + 10
    while True:
        try:
            if lookup(name):
                return
        except LookupError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"dnsmasq did not answer: {process.stdout.read().decode(errors='replace')}")
        time.sleep(0.1)
