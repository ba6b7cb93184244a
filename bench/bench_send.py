"""Send benchmark: segmail's sending engine beside raw SMTP of pre-built messages, in the same run.

An audience of N contacts (100,000 by default) over 7 languages is frozen, planned into batches
and sent to a local SMTP sink (a separate process) by C worker processes, each batch over one
connection through the SMTP provider's hook — rendering, MIME building (with a PDF attachment)
and status and activity writes included. The baseline pushes the same number of pre-built
messages of the same size over raw smtplib connections with the same concurrency C.

    make bench-send                        # 100,000 mails, concurrency 2
    make bench-send BENCH_ARGS="--contacts 20000 --concurrency 4"
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import secrets
import shutil
import smtplib
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LANGUAGES = ["de", "en", "fr", "it", "es", "pt", "nl"]


def make_include(folder: Path) -> None:
    """A 7-language copy of the demo newsletter (templates and attachment of the real one)."""
    shutil.copytree(ROOT / "include" / "templates", folder / "templates")
    shutil.copytree(ROOT / "include" / "attachments", folder / "attachments")
    (folder / "mailings").mkdir()
    variants = "\n".join(
        f'  {lang}:\n    subject: "{{{{ contact.first_name }}}}, newsletter ({lang})"\n'
        f"    body: newsletter/{'de' if lang == 'de' else 'fr' if lang == 'fr' else 'en'}.html\n"
        f"    attachments: [attachments/preisliste-fruehjahr.pdf]"
        for lang in LANGUAGES
    )
    common = (
        'audience: {segments: [Newsletter]}\nfrom: "Bench <bench@bench.example>"\n'
        f"default_language: en\nbatch_size: 1000\nactivity_log: true\nvariants:\n{variants}\n"
    )
    (folder / "mailings" / "bench.yaml").write_text("name: Bench\n" + common, encoding="utf-8")
    (folder / "mailings" / "bench_signed.yaml").write_text(
        "name: Bench signed\ndkim: {domain: bench.example, selector: bench, key_conn_id: bench_dkim}\n"
        + common,
        encoding="utf-8",
    )


def dkim_private_key() -> str:
    """A fresh RSA-2048 key in PEM, as a `dkim.key_conn_id` connection's password holds it."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()


def seed_contacts(engine, n: int) -> None:  # noqa: ANN001
    from segmail.contacts import salespeople, segments
    from segmail.store.db import bulk_insert

    salespeople.add_salesperson(code="MB", name="Maria Berger", email="maria@bench.example", engine=engine)
    segments.create_segment(name="Newsletter", salesperson="MB", engine=engine)
    now = datetime.now(UTC)
    tags = [
        "de-AT",
        "de",
        "en-US",
        "en",
        "fr-CA",
        "fr",
        "it",
        "es",
        "pt-BR",
        "nl",
        "sv",
    ]  # sv falls back to en
    rows = [
        (
            i,
            f"C{i:07d}",
            f"contact.{i}@example.com",
            f"contact.{i}@example.com",
            "DE",
            "Zoë" if i % 5 else "Jan",
            f"Müller-{i}",
            tags[i % len(tags)],
            False,
            now,
            now,
        )
        for i in range(1, n + 1)
    ]
    with engine.begin() as conn:
        bulk_insert(
            conn,
            "segmail_contacts",
            (
                "id",
                "external_id",
                "email",
                "email_key",
                "country_code",
                "first_name",
                "last_name",
                "language",
                "email_opt_out",
                "created_at",
                "updated_at",
            ),
            rows,
        )
        bulk_insert(
            conn, "segmail_memberships", ("contact_id", "segment_id"), [(i, 1) for i in range(1, n + 1)]
        )


def _send_one_batch(args: tuple[str, int]) -> dict:
    from segmail.mailings.definition import get_mailing
    from segmail.mailings.send import send_batch
    from segmail.mailings.transport import SmtpHookTransport

    slug, batch_id = args
    mailing = get_mailing(slug)
    return send_batch(batch_id, mailing=mailing, transport=SmtpHookTransport("smtp_default")).as_dict()


def run_segmail(n: int, concurrency: int, slug: str = "bench") -> tuple[float, dict]:
    from segmail.mailings.audience import freeze_audience
    from segmail.mailings.definition import get_mailing
    from segmail.mailings.deliveries import plan_batches
    from segmail.store.db import make_engine
    from segmail.store.read import run_totals

    engine = make_engine()
    mailing = get_mailing(slug)
    start = time.perf_counter()
    run_id = freeze_audience(mailing, dag_run_id=slug, engine=engine)
    batches = plan_batches(run_id, batch_size=mailing.batch_size, engine=engine)
    with multiprocessing.get_context("spawn").Pool(concurrency) as pool:
        results = pool.map(_send_one_batch, [(slug, b["batch_id"]) for b in batches], chunksize=1)
    seconds = time.perf_counter() - start
    totals = run_totals(run_id, engine=engine)
    assert totals["sent"] == n, totals
    assert sum(r["sent"] for r in results) == n
    return seconds, totals


def _raw_sender(args: tuple[int, int, bytes]) -> int:
    port, count, message = args
    client = smtplib.SMTP("127.0.0.1", port)
    for i in range(count):
        client.sendmail("bench@bench.example", [f"contact.{i}@example.com"], message)
    client.quit()
    return count


def run_baseline(n: int, concurrency: int, port: int, message: bytes) -> float:
    shares = [n // concurrency + (1 if i < n % concurrency else 0) for i in range(concurrency)]
    start = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(concurrency) as pool:
        sent = sum(pool.map(_raw_sender, [(port, share, message) for share in shares]))
    assert sent == n
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=2)
    args = parser.parse_args()

    from segmail.dev.smtpsink import free_port

    work = Path(tempfile.mkdtemp(prefix="segmail-bench-send-"))
    include = work / "include"
    make_include(include)
    port = free_port()
    os.environ.update(
        {
            "SEGMAIL_INCLUDE_DIR": str(include),
            "SEGMAIL_DB_URL": f"sqlite:///{work / 'bench.db'}",
            "AIRFLOW_CONN_SMTP_DEFAULT": f"smtp://127.0.0.1:{port}?disable_ssl=true&disable_tls=true&timeout=30",
            "SEGMAIL_PUBLIC_URL": "https://unsubscribe.bench.example",
            "SEGMAIL_UNSUBSCRIBE_MAILTO": "unsubscribe@bench.example",
            "AIRFLOW_CONN_SEGMAIL_SIGNING": json.dumps(
                {"conn_type": "generic", "password": secrets.token_hex(32)}
            ),
            "AIRFLOW_CONN_BENCH_DKIM": json.dumps({"conn_type": "generic", "password": dkim_private_key()}),
        }
    )
    sink = subprocess.Popen(
        [sys.executable, "-m", "segmail.dev.smtpsink", "-", str(port)], stdout=subprocess.PIPE, text=True
    )
    try:
        sink.stdout.readline()  # ready
        from segmail.store.db import make_engine
        from segmail.store.migrate import upgrade

        engine = make_engine()
        upgrade(engine)
        seed_contacts(engine, args.contacts)
        print(
            f"{args.contacts:,} contacts over {len(LANGUAGES)} languages; concurrency {args.concurrency}; "
            f"cores {os.cpu_count()}; SMTP sink: aiosmtpd in its own process",
            flush=True,
        )

        seconds, totals = run_segmail(args.contacts, args.concurrency)
        signed_seconds, _ = run_segmail(args.contacts, args.concurrency, slug="bench_signed")
        # A representative pre-built message of the same shape for the baseline.
        from sqlalchemy import text

        with engine.connect() as conn:
            size = conn.execute(
                text("SELECT COUNT(*) FROM segmail_activity_log WHERE mailing = 'bench'")
            ).scalar_one()
        from segmail.mailings.definition import get_mailing
        from segmail.mailings.mime import MessageFactory
        from segmail.mailings.render import SAMPLE_CONTACT, compile_variant, message_context

        mailing = get_mailing("bench")
        variant = compile_variant(mailing, "de")
        subject, body, html = variant.render(
            message_context(contact=SAMPLE_CONTACT, segment="Newsletter", salesperson=None, mailing=mailing)
        )
        message = MessageFactory(variant, domain="bench.example").build(
            to_name="Zoë Müller",
            to_addr="contact.1@example.com",
            subject=subject,
            text=body,
            html=html,
            message_id="<bench@bench.example>",
            date=datetime.now(UTC),
        )
        base = run_baseline(args.contacts, args.concurrency, port, message)
    finally:
        sink.terminate()
        sink.wait()
        shutil.rmtree(work, ignore_errors=True)

    rate, base_rate = args.contacts / seconds, args.contacts / base
    signed_rate = args.contacts / signed_seconds
    print(f"\n{'':<44} {'seconds':>8} {'messages/s':>11}")
    print(f"{'segmail (freeze, plan, render, MIME, send, status)':<44} {seconds:>8.1f} {rate:>11,.0f}")
    print(f"{'segmail, DKIM-signed (RSA-2048)':<44} {signed_seconds:>8.1f} {signed_rate:>11,.0f}")
    print(f"{'baseline: raw smtplib, pre-built messages':<44} {base:>8.1f} {base_rate:>11,.0f}")
    print(
        f"\nsegmail / baseline: {rate / base_rate:.0%}; message size {len(message):,} bytes; "
        f"activity rows {size:,}; by language: "
        + ", ".join(f"{k} {v.get('sent', 0)}" for k, v in totals["by_language"].items())
    )
    print("targets (2 cores): >= 2,500 messages/s and >= 50 % of the baseline")


if __name__ == "__main__":
    main()
