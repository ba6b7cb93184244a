"""`segmail mailings validate --dns` against a real DNS server (dnsmasq), named by SEGMAIL_DNS_SERVER."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from dns_support import DOMAIN, dnsmasq
from segmail.cli.main import main
from segmail.dev.smtpsink import free_port

INCLUDE = Path(__file__).resolve().parents[3] / "include"
SPF = {DOMAIN: "v=spf1 ip4:192.0.2.1 -all"}
DKIM_KEY = {
    f"s2026._domainkey.{DOMAIN}": "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
}
DMARC = {f"_dmarc.{DOMAIN}": "v=DMARC1; p=quarantine; rua=mailto:dmarc@autohaus-demo.example"}


@pytest.fixture
def signed_newsletter(tmp_path, monkeypatch):
    """The shipped mailings, the newsletter signing with DKIM selector s2026 of the From domain."""
    include = tmp_path / "include"
    shutil.copytree(INCLUDE, include)
    definition = include / "mailings" / "newsletter.yaml"
    definition.write_text(
        definition.read_text()
        + f"dkim: {{domain: {DOMAIN}, selector: s2026, key_conn_id: segmail_dkim_test}}\n"
    )
    monkeypatch.setenv("SEGMAIL_INCLUDE_DIR", str(include))
    # validate checks that the key connection exists; signing itself is tested in mailings/
    monkeypatch.setenv(
        "AIRFLOW_CONN_SEGMAIL_DKIM_TEST", json.dumps({"conn_type": "generic", "password": "present"})
    )


def test_missing_records_are_named(monkeypatch, capsys):
    with dnsmasq(SPF) as port:
        monkeypatch.setenv("SEGMAIL_DNS_SERVER", f"127.0.0.1:{port}")
        assert main(["mailings", "validate", "--dns"]) == 1
    out, err = capsys.readouterr()
    assert "ok: newsletter (de, en, fr)" in out  # the templates are fine; the DNS is not
    assert err.splitlines() == [
        f"error: {DOMAIN}: no DKIM signing configured (add `dkim:` to the mailing)",
        f'error: {DOMAIN}: no DMARC policy (TXT "v=DMARC1; p=none; rua=mailto:..." on _dmarc.{DOMAIN})',
    ]


def test_a_domain_with_spf_dkim_and_dmarc_passes(signed_newsletter, monkeypatch, capsys):
    with dnsmasq({**SPF, **DKIM_KEY, **DMARC}) as port:
        monkeypatch.setenv("SEGMAIL_DNS_SERVER", f"127.0.0.1:{port}")
        assert main(["mailings", "validate", "--dns"]) == 0
    out, err = capsys.readouterr()
    assert f"ok: DNS of {DOMAIN} (SPF, DKIM key, DMARC)" in out and err == ""


def test_the_selectors_key_must_be_published(signed_newsletter, monkeypatch, capsys):
    with dnsmasq({**SPF, **DMARC}) as port:
        monkeypatch.setenv("SEGMAIL_DNS_SERVER", f"127.0.0.1:{port}")
        assert main(["mailings", "validate", "--dns"]) == 1
    assert f"error: {DOMAIN}: no DKIM public key at s2026._domainkey.{DOMAIN}" in capsys.readouterr().err


def test_without_a_reachable_dns_server_the_check_is_skipped(monkeypatch, capsys):
    monkeypatch.setenv("SEGMAIL_DNS_SERVER", f"127.0.0.1:{free_port()}")  # nothing answers there
    assert main(["mailings", "validate", "--dns"]) == 0
    out, err = capsys.readouterr()
    assert "ok: newsletter (de, en, fr)" in out
    assert err.startswith(f"DNS check for {DOMAIN} skipped: DNS not reachable")


def test_a_malformed_dns_server_setting_is_a_one_line_error(monkeypatch, capsys):
    monkeypatch.setenv("SEGMAIL_DNS_SERVER", "127.0.0.1:fifty-three")
    assert main(["mailings", "validate", "--dns"]) == 2
    assert capsys.readouterr().err == (
        "error: SEGMAIL_DNS_SERVER must be host or host:port, not '127.0.0.1:fifty-three'\n"
    )
