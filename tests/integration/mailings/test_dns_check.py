"""The DNS check against a real DNS server (Debian's dnsmasq on a loopback port)."""

from __future__ import annotations

import pytest
from dns_support import DOMAIN, dnsmasq
from segmail.dev.smtpsink import free_port
from segmail.mailings.dns_check import check_domain, resolver_lookup


@pytest.fixture
def dns_server():
    """dnsmasq answering a DKIM key and SPF for the demo domain, and nothing else (no DMARC)."""
    records = {
        f"s1._domainkey.{DOMAIN}": "v=DKIM1; k=rsa; p=MIIBIjANBgkq",
        DOMAIN: "v=spf1 ip4:192.0.2.1 -all",
    }
    with dnsmasq(records) as port:
        yield resolver_lookup("127.0.0.1", port, timeout=2)


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
