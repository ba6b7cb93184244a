"""The DNS check against a real DNS server (Debian's dnsmasq on a loopback port)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest
from segmail.dev.smtpsink import free_port
from segmail.mailings.dns_check import check_domain, resolver_lookup

DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
DOMAIN = "autohaus-demo.example"


@pytest.fixture
def dns_server():
    """dnsmasq answering TXT records for the demo domain only (no upstream, no hosts file)."""
    if not os.path.exists(DNSMASQ):
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but dnsmasq is missing (scripts/ensure-debian.sh installs it)")
        pytest.skip("dnsmasq not installed")
    port = free_port()
    process = subprocess.Popen(
        [
            DNSMASQ,
            "--keep-in-foreground",
            "--no-resolv",
            "--no-hosts",
            "--bind-interfaces",
            "--listen-address=127.0.0.1",
            f"--port={port}",
            "--user=root" if os.geteuid() == 0 else "--user=" + os.environ.get("USER", "nobody"),
            "--pid-file=",
            f'--txt-record=s1._domainkey.{DOMAIN},"v=DKIM1; k=rsa; p=MIIBIjANBgkq"',
            f"--txt-record={DOMAIN},v=spf1 ip4:192.0.2.1 -all",
            f"--local=/{DOMAIN}/",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    lookup = resolver_lookup("127.0.0.1", port, timeout=2)
    deadline = time.monotonic() + 10
    while True:
        try:
            if lookup(DOMAIN):
                break
        except LookupError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"dnsmasq did not answer: {process.stdout.read().decode(errors='replace')}")
        time.sleep(0.1)
    yield lookup
    process.terminate()
    process.wait(timeout=10)


def test_a_real_dns_server_reports_the_missing_dmarc_record(dns_server):
    report = check_domain(DOMAIN, dkim_selector="s1", lookup=dns_server)
    assert report.skipped is None
    assert report.problems == [
        f'{DOMAIN}: no DMARC policy (TXT "v=DMARC1; p=none; rua=mailto:..." on _dmarc.{DOMAIN})'
    ]


def test_a_dns_server_that_does_not_answer_skips_the_check():
    silent_port = free_port()  # nothing listens here: the lookup times out
    report = check_domain(
        DOMAIN, dkim_selector="s1", lookup=resolver_lookup("127.0.0.1", silent_port, timeout=1)
    )
    assert report.problems == []
    assert report.skipped and report.skipped.startswith(f"DNS check for {DOMAIN} skipped: DNS not reachable")
