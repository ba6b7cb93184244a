"""`segmail mailings validate --dns`: do the From domain's DNS records let mailbox providers trust it?

Gmail and Yahoo ask bulk senders for SPF, DKIM and DMARC on the From domain. This looks up the
DKIM selector's public key, the SPF record and the DMARC policy and says what is missing. Without
a reachable DNS server the check is skipped with a message instead of failing every mailing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email.utils import parseaddr
from typing import TYPE_CHECKING

from segmail.errors import SegmailError

if TYPE_CHECKING:
    from segmail.mailings.definition import Mailing

TxtLookup = Callable[[str], list[str]]  # name -> TXT strings; raises LookupError when unreachable


class DnsUnavailable(LookupError):
    pass


@dataclass(frozen=True)
class DnsReport:
    domain: str
    problems: list[str]
    skipped: str | None = None


def resolver_lookup(nameserver: str | None = None, port: int = 53, timeout: float = 3.0) -> TxtLookup:
    """TXT lookups through dnspython (the system resolver, or one nameserver for tests)."""
    import dns.exception
    import dns.resolver

    try:
        resolver = dns.resolver.Resolver(configure=nameserver is None)
    except dns.resolver.NoResolverConfiguration:  # no /etc/resolv.conf: as offline

        def offline(name: str) -> list[str]:
            raise DnsUnavailable("no DNS resolver configured")

        return offline
    if nameserver:
        resolver.nameservers, resolver.port = [nameserver], port
    resolver.lifetime = timeout

    def lookup(name: str) -> list[str]:
        try:
            answer = resolver.resolve(name, "TXT")
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except (dns.resolver.NoNameservers, dns.exception.Timeout, OSError) as exc:
            raise DnsUnavailable(f"DNS not reachable ({type(exc).__name__})") from None
        return [b"".join(record.strings).decode(errors="replace") for record in answer]

    return lookup


def resolver_for(server: str | None) -> TxtLookup:
    """SEGMAIL_DNS_SERVER (`host` or `host:port`, `[v6]:port`) if set, else the system resolver."""
    if not server:
        return resolver_lookup()
    host, port = server, "53"
    if server.startswith("["):
        host, _, rest = server[1:].partition("]")
        port = rest.lstrip(":") or port
    elif server.count(":") == 1:
        host, _, port = server.partition(":")
    if not host or not port.isdigit():
        raise SegmailError(f"SEGMAIL_DNS_SERVER must be host or host:port, not {server!r}")
    return resolver_lookup(host, int(port))


def from_domains(mailing: Mailing) -> dict[str, str | None]:
    """Every From domain of a mailing (its variants may override From), with the DKIM selector
    that signs for it: only a `dkim.domain` equal to the From domain aligns under DMARC. An SMS
    mailing has none."""
    if mailing.channel == "sms":
        return {}
    senders = [mailing.from_, *(v.from_ for v in mailing.variants.values() if v.from_)]
    domains = {parseaddr(sender)[1].rpartition("@")[2].lower() for sender in senders}
    dkim = mailing.dkim
    return {
        domain: dkim.selector if dkim and dkim.domain.lower() == domain else None
        for domain in sorted(domains - {""})
    }


def check_mailings(mailings: Iterable[Mailing], *, lookup: TxtLookup) -> list[DnsReport]:
    """One report per From domain of the given mailings, each domain checked once."""
    wanted: dict[str, str | None] = {}
    for mailing in mailings:
        for domain, selector in from_domains(mailing).items():
            wanted[domain] = wanted.get(domain) or selector
    return [
        check_domain(domain, dkim_selector=selector, lookup=lookup) for domain, selector in wanted.items()
    ]


def check_domain(domain: str, *, dkim_selector: str | None, lookup: TxtLookup) -> DnsReport:
    try:
        problems = [
            *_dkim_problems(domain, dkim_selector, lookup),
            *_spf_problems(domain, lookup),
            *_dmarc_problems(domain, lookup),
        ]
    except DnsUnavailable as exc:
        return DnsReport(domain, [], skipped=f"DNS check for {domain} skipped: {exc}")
    return DnsReport(domain, problems)


def _dkim_problems(domain: str, selector: str | None, lookup: TxtLookup) -> list[str]:
    if not selector:
        return [f"{domain}: no DKIM signing configured (add `dkim:` to the mailing)"]
    name = f"{selector}._domainkey.{domain}"
    records = [r for r in lookup(name) if "p=" in r]
    if not records:
        return [f'{domain}: no DKIM public key at {name} (TXT "v=DKIM1; k=rsa; p=...")']
    if any("p=;" in r.replace(" ", "") or r.replace(" ", "").endswith("p=") for r in records):
        return [f"{domain}: the DKIM key at {name} is revoked (empty p=)"]
    return []


def _spf_problems(domain: str, lookup: TxtLookup) -> list[str]:
    spf = [r for r in lookup(domain) if r.lower().startswith("v=spf1")]
    if not spf:
        return [f'{domain}: no SPF record (TXT "v=spf1 ... -all" on {domain})']
    if len(spf) > 1:
        return [f"{domain}: {len(spf)} SPF records; receivers treat more than one as an error"]
    return []


def _dmarc_problems(domain: str, lookup: TxtLookup) -> list[str]:
    name = f"_dmarc.{domain}"
    dmarc = [r for r in lookup(name) if r.lower().startswith("v=dmarc1")]
    if not dmarc:
        return [f'{domain}: no DMARC policy (TXT "v=DMARC1; p=none; rua=mailto:..." on {name})']
    return []
