"""Send benchmark: segmail's sending engine beside raw SMTP of pre-built messages, in the same run.

An audience of N contacts (100,000 by default) over 7 languages is frozen, planned into batches
and sent by C worker processes (2 by default), each batch over K pipelined SMTP connections
(`--connections`, the mailing's `smtp_connections`) through the SMTP provider's hook — rendering,
MIME building (with a PDF attachment), unsubscribe links, and the status and activity writes
included, each SMTP result committed before the next mail on its connection (the crash window).
The baseline pushes the same number of pre-built messages of the same size over raw sockets with
the same concurrency (C processes x K connections), pipelined the same way when the server offers
PIPELINING (RFC 2920: a mail's content and the next mail's MAIL/RCPT/DATA in one write) — the
fastest a client may go on that server.

The sink is Postfix's C `smtp-sink` on loopback (installed from Debian's `postfix` package when
missing and root); without it, the Python aiosmtpd sink, which competes for the same cores, with a
warning. Worker processes are started, and their imports done, before the clock starts, for
segmail and the baseline alike. segmail and the baseline are measured in turn, `--repeat` times
each (3 by default), and the medians are reported beside the range: the test machine is shared, and
one attempt can be 20 % off the next. A DKIM-signed run (RSA-2048) is reported too.

The ceiling: each attempt also sends the same number of mails through `AcceptingTransport`, which
accepts every mail at once, so segmail does all its own work (freeze, rendering, MIME, links, status
and activity writes) and nothing goes over SMTP; segmail as written cannot send faster than that,
whatever the SMTP client. Beside it: how busy the baseline keeps the cores (from /proc/stat), and
the CPU cost of composing alone.

    make bench-send                        # 100,000 mails, 2 processes x 8 connections, SQLite
    make bench-send BENCH_ARGS="--contacts 20000 --db postgresql --connections 2"

The last line reads `RESULT send: segmail N msgs/s, baseline M msgs/s, R % (sink: smtp-sink)`.
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LANGUAGES = ["de", "en", "fr", "it", "es", "pt", "nl"]
SMTP_SINK = "/usr/sbin/smtp-sink"
PG_ADMIN_URLS = (
    "postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
    "postgresql+psycopg://root@127.0.0.1:5432/root",
)


# ---------------------------------------------------------------- setup


def make_include(folder: Path, connections: int = 2) -> None:
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
        f"default_language: en\nbatch_size: 1000\nsmtp_connections: {connections}\nactivity_log: true\n"
        f"variants:\n{variants}\n"
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
    tags = ["de-AT", "de", "en-US", "en", "fr-CA", "fr", "it", "es", "pt-BR", "nl", "sv"]  # sv: en
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
    columns = (
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
    )
    with engine.begin() as conn:
        bulk_insert(conn, "segmail_contacts", columns, rows)
        bulk_insert(
            conn, "segmail_memberships", ("contact_id", "segment_id"), [(i, 1) for i in range(1, n + 1)]
        )


def fresh_database(kind: str, work: Path) -> tuple[str, Callable[[], None]]:
    """A new empty database URL, and how to drop it."""
    if kind == "sqlite":
        return f"sqlite:///{work / 'bench.db'}", lambda: None
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    for admin_url in PG_ADMIN_URLS:
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                name = f"segmail_bench_send_{secrets.token_hex(4)}"
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        except Exception:  # the next user/database this machine may have
            admin.dispose()
            continue

        def drop(admin=admin, name=name) -> None:  # noqa: ANN001
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()

        return make_url(admin_url).set(database=name).render_as_string(hide_password=False), drop
    raise SystemExit("no PostgreSQL reachable on 127.0.0.1:5432")


def start_sink(port: int) -> tuple[subprocess.Popen, str]:
    """Postfix's smtp-sink (installed when missing and root), else the aiosmtpd sink with a warning."""
    if not os.access(SMTP_SINK, os.X_OK) and os.geteuid() == 0:
        subprocess.run(
            ["bash", str(ROOT / "scripts" / "ensure-debian.sh"), f"{SMTP_SINK}=postfix"], check=False
        )
    if os.access(SMTP_SINK, os.X_OK):
        user = ["-u", "nobody"] if os.geteuid() == 0 else []
        sink = subprocess.Popen([SMTP_SINK, *user, f"127.0.0.1:{port}", "1024"], stderr=subprocess.DEVNULL)
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return sink, "smtp-sink"
            except OSError:
                time.sleep(0.02)
        sink.kill()
    print(
        "WARNING: Postfix's smtp-sink is not available (needs root to install `postfix`): the Python"
        " aiosmtpd sink is used, which competes with the senders for the same cores",
        file=sys.stderr,
    )
    sink = subprocess.Popen(
        [sys.executable, "-m", "segmail.dev.smtpsink", "-", str(port)], stdout=subprocess.PIPE, text=True
    )
    sink.stdout.readline()  # ready
    return sink, "aiosmtpd"


# ---------------------------------------------------------------- segmail


def _warm() -> None:
    """Worker start-up: the imports a task process has done before it sends."""
    import airflow.providers.smtp.hooks.smtp  # noqa: F401
    import segmail.mailings.send  # noqa: F401


class AcceptingTransport:
    """A transport that accepts every mail at once, `connections` mails a round as the real one
    records them: what segmail does for a mail besides SMTP (render, MIME, links, status and
    activity writes), measured alone. segmail cannot send faster than this."""

    def __init__(self, connections: int) -> None:
        self.connections = connections

    def __enter__(self) -> AcceptingTransport:
        return self

    def __exit__(self, *exc_info: object) -> None:
        pass

    def send_all(self, mails, record) -> None:  # noqa: ANN001
        from segmail.mailings.transport import Result

        while chunk := list(itertools.islice(mails, self.connections)):
            record([Result(mail, 250, "2.0.0 Ok: queued") for mail in chunk])


def _send_one_batch(args: tuple[str, int, bool]) -> dict:
    from segmail.mailings.definition import get_mailing
    from segmail.mailings.send import send_batch
    from segmail.mailings.transport import SmtpHookTransport

    slug, batch_id, smtp = args
    cpu = time.process_time()
    mailing = get_mailing(slug)
    transport = (
        SmtpHookTransport("smtp_default", connections=mailing.smtp_connections)
        if smtp
        else AcceptingTransport(mailing.smtp_connections)
    )
    result = send_batch(batch_id, mailing=mailing, transport=transport).as_dict()
    return {**result, "cpu": time.process_time() - cpu}


def run_segmail(
    pool,  # noqa: ANN001
    n: int,
    slug: str,
    attempt: int = 1,
    *,
    smtp: bool = True,
) -> tuple[dict[str, float], dict]:
    """The whole run of `n` mails (the first n contacts), timed by phase; each attempt is a new run.
    `smtp` False: through `AcceptingTransport`, no SMTP at all."""
    from segmail.mailings.audience import freeze_audience
    from segmail.mailings.definition import get_mailing
    from segmail.mailings.deliveries import plan_batches
    from segmail.store.db import make_engine
    from segmail.store.read import run_totals

    engine = make_engine()
    mailing = get_mailing(slug)
    start = time.perf_counter()
    run_id = freeze_audience(  # batches planned with the rows, as the DAG does without an approval
        mailing,
        dag_run_id=f"{slug}-{attempt}" if smtp else f"{slug}-no-smtp-{attempt}",
        max_recipients=n,
        batch_size=mailing.batch_size,
        engine=engine,
    )
    frozen = time.perf_counter()
    batches = plan_batches(run_id, batch_size=mailing.batch_size, engine=engine)
    planned = time.perf_counter()
    results = pool.map(_send_one_batch, [(slug, b["batch_id"], smtp) for b in batches], chunksize=1)
    done = time.perf_counter()
    totals = run_totals(run_id, engine=engine)
    assert totals["sent"] == n, totals
    assert sum(r["sent"] for r in results) == n
    engine.dispose()
    phases = {
        "freeze": frozen - start,
        "plan": planned - frozen,
        "send": done - planned,
        "total": done - start,
    }
    phases["worker_cpu_us"] = sum(r["cpu"] for r in results) / n * 1e6
    return phases, totals


# ---------------------------------------------------------------- baseline: raw pipelined SMTP


class _RawConnection:
    """A bare SMTP client connection: pre-built message, replies read in order."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.file = self.sock.makefile("rb")
        self.replies(1)
        self.sock.sendall(b"EHLO bench.example\r\n")
        self.pipelining = b"PIPELINING" in self.replies(1)[0][1].upper()

    def replies(self, count: int) -> list[tuple[int, bytes]]:
        out = []
        for _ in range(count):
            lines = []
            while True:
                line = self.file.readline()
                if not line:
                    raise ConnectionError("closed")
                lines.append(line)
                if line[3:4] != b"-":
                    break
            out.append((int(line[:3]), b"".join(lines)))
        return out

    def expect(self, count: int, codes: tuple[int, ...]) -> None:
        got = [code for code, _ in self.replies(count)]
        assert tuple(got) == codes, got


def _envelope(i: int) -> bytes:
    return b"MAIL FROM:<bench@bench.example>\r\nRCPT TO:<contact.%d@example.com>\r\nDATA\r\n" % i


def _raw_sender(args: tuple[int, int, int, bytes]) -> int:
    """`count` mails over `connections` connections in rounds, as segmail's transport drives them."""
    port, count, connections, message = args
    conns = [_RawConnection(port) for _ in range(min(connections, count))]
    queues = [list(range(i, count, len(conns))) for i in range(len(conns))]
    rounds = _pipelined_rounds if conns[0].pipelining else _lockstep_rounds
    rounds(conns, queues, message + b".\r\n")
    for conn in conns:
        conn.sock.sendall(b"QUIT\r\n")
        conn.sock.close()
    return count


def _pipelined_rounds(conns: list[_RawConnection], queues: list[list[int]], data: bytes) -> None:
    """Per connection and round: the replies to MAIL/RCPT/DATA, then one write of the content and
    the next mail's envelope, then the reply to the content."""
    for conn, queue in zip(conns, queues, strict=True):
        conn.sock.sendall(_envelope(queue[0]))
    for step in range(len(queues[0])):
        active = [(conn, queue) for conn, queue in zip(conns, queues, strict=True) if step < len(queue)]
        for conn, queue in active:
            conn.expect(3, (250, 250, 354))
            following = _envelope(queue[step + 1]) if step + 1 < len(queue) else b""
            conn.sock.sendall(data + following)
        for conn, _ in active:
            conn.expect(1, (250,))


def _lockstep_rounds(conns: list[_RawConnection], queues: list[list[int]], data: bytes) -> None:
    """Without PIPELINING: every command waits for its reply."""
    for step in range(len(queues[0])):
        for conn, queue in zip(conns, queues, strict=True):
            if step >= len(queue):
                continue
            commands = _envelope(queue[step]).split(b"\r\n")[:3]
            for command, code in zip(commands, (250, 250, 354), strict=True):
                conn.sock.sendall(command + b"\r\n")
                conn.expect(1, (code,))
            conn.sock.sendall(data)
            conn.expect(1, (250,))


def run_baseline(pool, n: int, concurrency: int, connections: int, port: int, message: bytes) -> float:  # noqa: ANN001
    shares = [n // concurrency + (1 if i < n % concurrency else 0) for i in range(concurrency)]
    start = time.perf_counter()
    sent = sum(pool.map(_raw_sender, [(port, share, connections, message) for share in shares], chunksize=1))
    assert sent == n
    return time.perf_counter() - start


def _cpu_jiffies() -> tuple[int, int] | None:
    """(all, idle) CPU time of the machine so far, from /proc/stat; None where there is none."""
    try:
        with open("/proc/stat") as stat:
            values = [int(v) for v in stat.readline().split()[1:]]
    except OSError:
        return None
    return sum(values), values[3] + values[4]  # idle + iowait


def busy_share(run: Callable[[], float]) -> tuple[float, float | None]:
    """`run()`'s seconds, and the share of all cores that were busy meanwhile (None without /proc)."""
    before = _cpu_jiffies()
    seconds = run()
    after = _cpu_jiffies()
    if before is None or after is None or after[0] == before[0]:
        return seconds, None
    return seconds, 1 - (after[1] - before[1]) / (after[0] - before[0])


def sample_message() -> bytes:
    """A representative pre-built message of the same shape (German, HTML + text, the PDF)."""
    from segmail.mailings.definition import get_mailing
    from segmail.mailings.mime import MessageFactory
    from segmail.mailings.render import SAMPLE_CONTACT, compile_variant, message_context

    mailing = get_mailing("bench")
    variant = compile_variant(mailing, "de")
    subject, body, html = variant.render(
        message_context(contact=SAMPLE_CONTACT, segment="Newsletter", salesperson=None, mailing=mailing)
    )
    return MessageFactory(variant, domain="bench.example").build(
        to_name="Zoë Müller",
        to_addr="contact.1@example.com",
        subject=subject,
        text=body,
        html=html,
        message_id="<bench@bench.example>",
        date=datetime.now(UTC),
        list_unsubscribe="<https://unsubscribe.bench.example/u/u.1.abc.0123456789abcdefghijklmnop>",
        one_click=True,
    )


def compose_cost_us(slug: str, n: int = 20_000) -> float:
    """CPU microseconds per mail of composing alone (rendering, MIME, signed links), in this process,
    warm, with no SMTP and no database: work every mail needs that the raw baseline does not do."""
    from segmail.mailings.compose import composer_for
    from segmail.mailings.definition import get_mailing
    from segmail.mailings.deliveries import PendingMail
    from segmail.mailings.render import compiled_variant

    mailing = get_mailing(slug)
    composers = [composer_for(mailing, compiled_variant(mailing, language)) for language in LANGUAGES]
    mails = [
        PendingMail(
            i,
            i,
            f"contact.{i}@example.com",
            "Zoë",
            f"Müller-{i}",
            country_code="DE",
            segment="Newsletter",
            sp_code="MB",
            sp_name="Maria Berger",
            sp_email="maria@bench.example",
        )
        for i in range(1, n + 1)
    ]
    now = datetime.now(UTC)
    for composer in composers:  # warm
        composer.compose_delivery(1, mails[0], date=now)
    start = time.process_time()
    for i, mail in enumerate(mails):
        composers[i % len(composers)].compose_delivery(1, mail, date=now)
    return (time.process_time() - start) / n * 1e6


# ---------------------------------------------------------------- main


def environment(work: Path, port: int, db_url: str) -> None:
    os.environ.update(
        {
            "SEGMAIL_INCLUDE_DIR": str(work / "include"),
            "SEGMAIL_DB_URL": db_url,
            "AIRFLOW_CONN_SMTP_DEFAULT": json.dumps(
                {
                    "conn_type": "smtp",
                    "host": "127.0.0.1",
                    "port": port,
                    "extra": {"disable_ssl": True, "disable_tls": True, "timeout": 30},
                }
            ),
            "SEGMAIL_PUBLIC_URL": "https://unsubscribe.bench.example",
            "SEGMAIL_UNSUBSCRIBE_MAILTO": "unsubscribe@bench.example",
            "AIRFLOW_CONN_SEGMAIL_SIGNING": json.dumps(
                {"conn_type": "generic", "password": secrets.token_hex(32)}
            ),
            "AIRFLOW_CONN_BENCH_DKIM": json.dumps({"conn_type": "generic", "password": dkim_private_key()}),
        }
    )


def _baseline_cost(seconds: float, busy: float | None, n: int) -> str:
    """How busy the median baseline kept the machine's cores, as core time per mail."""
    if busy is None:
        return ""
    cores = os.cpu_count() or 1
    return (
        f"\nbaseline: {cores} cores {busy:.0%} busy, {busy * cores * seconds / n * 1e6:.0f} us of core time"
        f" a mail (client, sink and kernel); half its rate leaves {2 * cores * seconds / n * 1e6:.0f} us"
        f" of core time a mail for everything"
    )


def median_run(runs: list[dict]) -> dict:
    """The attempt with the median total time (its phases are reported as they were measured)."""
    return sorted(runs, key=lambda phases: phases["total"])[len(runs) // 2]


def spread(label: str, n: int, seconds: list[float]) -> str:
    rates = sorted(n / s for s in seconds)
    return f"{label} {rates[0]:,.0f}–{rates[-1]:,.0f} msgs/s over {len(rates)} attempts"


def report(
    args: argparse.Namespace, sink_kind: str, phases: dict, signed: dict | None, base: float, extra: str
) -> None:
    n = args.contacts
    rate, base_rate = n / phases["total"], n / base
    print(f"\n{'':<52} {'seconds':>8} {'messages/s':>11}")
    for name in ("freeze", "plan", "send"):
        print(f"{'  ' + name:<52} {phases[name]:>8.2f}")
    print(f"{'  (worker CPU per mail: ' + format(phases['worker_cpu_us'], '.0f') + ' us)':<52}")
    print(
        f"{'segmail (freeze, plan, render, MIME, send, status)':<52} {phases['total']:>8.2f} {rate:>11,.0f}"
    )
    if signed:
        label = f"segmail, DKIM-signed (RSA-2048), {args.signed:,} mails"
        print(f"{label:<52} {signed['total']:>8.2f} {args.signed / signed['total']:>11,.0f}")
    print(f"{'baseline: raw pre-built messages, pipelined':<52} {base:>8.2f} {base_rate:>11,.0f}")
    print(f"\nsegmail / baseline: {rate / base_rate:.0%}")
    print(extra)
    print("targets (2 cores): >= 5,000 messages/s and >= 50 % of the baseline")
    print(
        f"RESULT send: segmail {rate:,.0f} msgs/s, baseline {base_rate:,.0f} msgs/s, {rate / base_rate:.0%}"
        f" (sink: {sink_kind})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=2, help="worker processes")
    parser.add_argument("--connections", type=int, default=8, help="SMTP connections per worker")
    parser.add_argument(
        "--signed", type=int, help="mails of the DKIM-signed run (default: --contacts; 0: none)"
    )
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="attempts of segmail and of the baseline, taken in turn; the medians are reported",
    )
    args = parser.parse_args()
    args.signed = args.contacts if args.signed is None else args.signed

    from segmail.dev.smtpsink import free_port

    work = Path(tempfile.mkdtemp(prefix="segmail-bench-send-"))
    make_include(work / "include", connections=args.connections)
    port = free_port()
    db_url, drop_database = fresh_database(args.db, work)
    environment(work, port, db_url)
    sink, sink_kind = start_sink(port)
    load_before = os.getloadavg()
    try:
        from segmail.store.db import make_engine
        from segmail.store.migrate import upgrade

        engine = make_engine()
        upgrade(engine)
        seed_contacts(engine, max(args.contacts, args.signed))
        engine.dispose()
        print(
            f"{args.contacts:,} contacts over {len(LANGUAGES)} languages; {args.concurrency} processes x"
            f" {args.connections} SMTP connections; database {args.db}; cores {os.cpu_count()}; sink {sink_kind};"
            f" load average {load_before[0]:.2f}",
            flush=True,
        )
        context = multiprocessing.get_context("spawn")
        message = sample_message()
        runs, bases, alone_runs = [], [], []
        # Taken in turn, so that a slower stretch of a shared machine weighs on both sides alike.
        with (
            context.Pool(args.concurrency, initializer=_warm) as pool,
            context.Pool(args.concurrency) as raw_pool,
        ):
            pool.map(time.sleep, [0.1] * args.concurrency)  # started and warm before the clock runs
            raw_pool.map(time.sleep, [0.1] * args.concurrency)
            for attempt in range(1, args.repeat + 1):
                phases, totals = run_segmail(pool, args.contacts, "bench", attempt)
                runs.append(phases)
                bases.append(
                    busy_share(
                        lambda: run_baseline(
                            raw_pool, args.contacts, args.concurrency, args.connections, port, message
                        )
                    )
                )
                alone_runs.append(run_segmail(pool, args.contacts, "bench", attempt, smtp=False)[0])
            signed = run_segmail(pool, args.signed, "bench_signed")[0] if args.signed else None
            one = run_baseline(raw_pool, args.contacts, args.concurrency, 1, port, message)
        phases, alone = median_run(runs), median_run(alone_runs)
        base, base_busy = sorted(bases, key=lambda attempt: attempt[0])[len(bases) // 2]
        compose_us = compose_cost_us("bench")
    finally:
        sink.terminate()
        sink.wait()
        drop_database()
        shutil.rmtree(work, ignore_errors=True)
    load_after = os.getloadavg()
    extra = (
        spread("segmail", args.contacts, [r["total"] for r in runs])
        + "; "
        + spread("baseline", args.contacts, [seconds for seconds, _ in bases])
        + f"\nbaseline with 1 connection per process (reference): {args.contacts / one:,.0f} msgs/s;"
        f" message size {len(message):,} bytes; by language: "
        + ", ".join(f"{k} {v.get('sent', 0)}" for k, v in totals["by_language"].items())
        + f"; load average {load_before[0]:.2f} before, {load_after[0]:.2f} after (machine shared)"
        + f"\nceiling: segmail without SMTP (a transport that accepts every mail at once; freeze, render,"
        f" MIME, links, status and activity writes, nothing sent): median {alone['total']:.2f} s ="
        f" {args.contacts / alone['total']:,.0f} msgs/s, {base / alone['total']:.0%} of the baseline"
        f" ({spread('attempts', args.contacts, [r['total'] for r in alone_runs])}); segmail as written"
        f" cannot send faster than that, whatever the SMTP client; its worker CPU {alone['worker_cpu_us']:.0f}"
        f" us a mail; composing alone (render, MIME, links; measured apart) {compose_us:.0f} us a mail"
        + _baseline_cost(base, base_busy, args.contacts)
    )
    report(args, sink_kind, phases, signed, base, extra)


if __name__ == "__main__":
    main()
