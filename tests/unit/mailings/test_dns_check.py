"""The DNS check names each missing record and is skipped, not failed, without DNS."""

from __future__ import annotations

import pytest
from segmail.mailings.dns_check import DnsUnavailable, check_domain

DOMAIN = "autohaus-demo.example"
GOOD = {
    f"s1._domainkey.{DOMAIN}": ["v=DKIM1; k=rsa; p=MIIBIjANBgkq"],
    DOMAIN: ["v=spf1 ip4:192.0.2.1 -all", "google-site-verification=x"],
    f"_dmarc.{DOMAIN}": ["v=DMARC1; p=quarantine; rua=mailto:dmarc@autohaus-demo.example"],
}


def lookup_from(records: dict[str, list[str]]):
    return lambda name: records.get(name, [])


def test_a_complete_domain_has_no_problems():
    report = check_domain(DOMAIN, dkim_selector="s1", lookup=lookup_from(GOOD))
    assert report.problems == [] and report.skipped is None


@pytest.mark.parametrize(
    ("remove", "expected"),
    [
        pytest.param(f"s1._domainkey.{DOMAIN}", "no DKIM public key at s1._domainkey", id="dkim"),
        pytest.param(DOMAIN, "no SPF record", id="spf"),
        pytest.param(f"_dmarc.{DOMAIN}", "no DMARC policy", id="dmarc"),
    ],
)
def test_each_missing_record_is_named(remove, expected):
    records = {k: v for k, v in GOOD.items() if k != remove}
    report = check_domain(DOMAIN, dkim_selector="s1", lookup=lookup_from(records))
    assert len(report.problems) == 1 and expected in report.problems[0]


def test_two_spf_records_and_a_revoked_key_are_problems():
    records = {**GOOD, DOMAIN: ["v=spf1 -all", "v=spf1 a -all"], f"s1._domainkey.{DOMAIN}": ["v=DKIM1; p="]}
    problems = check_domain(DOMAIN, dkim_selector="s1", lookup=lookup_from(records)).problems
    assert any("revoked" in p for p in problems) and any("2 SPF records" in p for p in problems)


def test_without_dkim_configured_the_check_says_so():
    problems = check_domain(DOMAIN, dkim_selector=None, lookup=lookup_from(GOOD)).problems
    assert problems == [f"{DOMAIN}: no DKIM signing configured (add `dkim:` to the mailing)"]


def test_no_dns_skips_with_a_message():
    def offline(name: str) -> list[str]:
        raise DnsUnavailable("DNS not reachable (Timeout)")

    report = check_domain(DOMAIN, dkim_selector="s1", lookup=offline)
    assert report.problems == []
    assert report.skipped == f"DNS check for {DOMAIN} skipped: DNS not reachable (Timeout)"
