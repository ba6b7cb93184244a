"""SMS benchmark: segmail's SMS sending through a real Kannel beside raw sendsms requests, same run.

A private Kannel (bearerbox + smsbox on loopback, Debian's `fakesmsc` as the SMS centre) takes an
SMS broadcast of N contacts (2,000 by default) in 3 languages (one UCS-2): the audience is
imported, frozen and planned into batches, then every batch goes through `send_sms_batch` and
`KannelGateway` (one keep-alive connection; rendering, encoding and parts, each answer committed
before the next message). The clock runs from the first submission until fakesmsc has printed the
last message, so the figure is what passes *through* Kannel, not what it queued. The baseline
submits N pre-built messages over one keep-alive connection with no database at all. 300 messages
warm Kannel up first (its first few hundred go several times slower).

With `--reports` every message carries a report URL and Kannel's delivery reports go to the
public app (`segmail serve-public`, its own process) while sending: closer to production, and much
slower, mostly in Kannel itself: smsbox takes acknowledgements for new messages and the reports to
call back on the same connection to bearerbox, and on the 2-core test machine Kannel passed only
100-180 msgs/s with reports even to a do-nothing HTTP endpoint (about 1,000 without).

    make bench-sms
    make bench-sms BENCH_ARGS="--contacts 5000 --reports --db postgresql"

The last line reads `RESULT sms: N msgs/s through Kannel (fakesmsc)`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LANGUAGES = ("de", "en", "fr")
TEXTS = {
    "de": "Hallo {{ contact.first_name }}, Ihr Fahrzeug ist zum Saison-Check fällig. STOP zum Abmelden",
    "en": "Hi {{ contact.first_name }}, your car is due for its seasonal check. Reply STOP to opt out",
    "fr": "Bonjour {{ contact.first_name }}, votre révision saisonnière arrive. Répondez ARRÊT",
}


def number(i: int) -> str:
    return f"+43664{1000000 + i}"


def write_contacts(path: Path, count: int) -> None:
    lines = ["External ID,Country Code,First Name,Last Name,Mobile Number,Language,Segments"]
    lines += [f"B{i},AT,Name{i},Kunde,{number(i)},{LANGUAGES[i % 3]},Bench" for i in range(1, count + 1)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def mailing():  # noqa: ANN201
    from segmail.mailings.definition import Mailing

    return Mailing.model_validate(
        {
            "slug": "bench_sms",
            "name": "Bench SMS",
            "channel": "sms",
            "audience": {"segments": ["Bench"]},
            "sender": "Autohaus",
            "default_language": "en",
            "batch_size": 500,
            "variants": {lang: {"text": body} for lang, body in TEXTS.items()},
        }
    )


def prepare_run(engine, count: int, folder: Path):  # noqa: ANN001, ANN201
    from segmail.contacts import segments
    from segmail.imports.pipeline import import_file
    from segmail.mailings.audience import freeze_audience
    from segmail.mailings.deliveries import plan_batches

    segments.create_segment(name="Bench", engine=engine)
    csv = folder / "contacts.csv"
    write_contacts(csv, count)
    import_file(csv, engine=engine)
    definition = mailing()
    run = freeze_audience(definition, dag_run_id="bench-sms", engine=engine)
    return definition, plan_batches(run, batch_size=definition.batch_size, engine=engine)


def through_kannel(kannel, count: int, send) -> float:  # noqa: ANN001
    """Messages per second from the first submission until fakesmsc printed the last one."""
    before = len(kannel.received())
    started = time.perf_counter()
    send()
    kannel.wait_received(count, since=before, timeout=max(60, count / 20))
    return count / (time.perf_counter() - started)


def segmail_rate(kannel, engine, count: int, folder: Path) -> float:  # noqa: ANN001
    from segmail.sms.kannel import gateway_for
    from segmail.sms.send import send_sms_batch

    definition, batches = prepare_run(engine, count, folder)
    import segmail.sms.reports  # noqa: F401  imported by the first batch otherwise: not part of sending

    def send() -> None:
        for batch in batches:
            send_sms_batch(
                batch["batch_id"], mailing=definition, gateway=gateway_for("sms_default"), engine=engine
            )

    return through_kannel(kannel, count, send)


def baseline_rate(kannel, count: int) -> float:  # noqa: ANN001
    from segmail.sms.gateway import SmsEncoding, SmsMessage
    from segmail.sms.kannel import gateway_for

    messages = [
        SmsMessage(
            to=number(i),
            sender="Autohaus",
            text=TEXTS[LANGUAGES[i % 3]].replace("{{ contact.first_name }}", f"Name{i}"),
            encoding=SmsEncoding.UCS2 if LANGUAGES[i % 3] == "fr" else SmsEncoding.GSM7,
        )
        for i in range(1, count + 1)
    ]

    def send() -> None:
        with gateway_for("sms_default") as gateway:
            for message in messages:
                gateway.submit(message)

    return through_kannel(kannel, count, send)


@contextmanager
def public_app(db_url: str):  # noqa: ANN201
    """`segmail serve-public` on a free port, its own process as in production, for the reports."""
    import subprocess
    import urllib.request

    from segmail.dev.processes import Children
    from segmail.dev.smtpsink import free_port

    port = free_port()
    env = {**os.environ, "SEGMAIL_DB_URL": db_url, "SEGMAIL_PUBLIC_PORT": str(port)}
    children = Children()
    children.start(
        [sys.executable, "-m", "segmail.cli.main", "serve-public"], env=env, stdout=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/healthz", timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    sys.exit(f"the public app did not start on {url}")
                time.sleep(0.2)
        yield url
    finally:
        children.stop(grace=5)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=2000)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument(
        "--reports", action="store_true", help="delivery reports to the public app while sending"
    )
    args = parser.parse_args()

    from segmail.dev.smsgateway import LocalKannel, missing

    reason = missing()
    if reason:
        sys.exit(f"bench-sms needs Kannel: {reason}")
    folder = Path(tempfile.mkdtemp(prefix="segmail-bench-sms-"))
    os.environ.update(
        {
            "AIRFLOW_HOME": str(folder / "airflow"),
            "SEGMAIL_INCLUDE_DIR": str(ROOT / "include"),
            "AIRFLOW_CONN_SEGMAIL_SIGNING": json.dumps(
                {"conn_type": "generic", "password": "bench-sms-signing-key-0123456789"}
            ),
        }
    )
    os.environ.pop("SEGMAIL_PUBLIC_URL", None)
    from bench_send import fresh_database  # the same databases as bench-send
    from segmail.store.db import make_engine
    from segmail.store.migrate import upgrade

    db_url, drop = fresh_database(args.db, folder)
    engine = make_engine(db_url)
    upgrade(engine)
    with ExitStack() as stack:
        stack.callback(drop)
        stack.callback(engine.dispose)
        kannel = stack.enter_context(LocalKannel())
        os.environ["AIRFLOW_CONN_SMS_DEFAULT"] = json.dumps(kannel.connection())
        if args.reports:
            os.environ["SEGMAIL_PUBLIC_URL"] = stack.enter_context(public_app(db_url))
        print(
            f"Kannel {kannel.root}: {args.contacts} contacts, 3 languages, reports={'on' if args.reports else 'off'}"
        )
        baseline_rate(kannel, 300)  # warm-up: Kannel's first few hundred messages go slower
        baseline = baseline_rate(kannel, args.contacts)
        print(f"baseline: raw sendsms over one keep-alive connection: {baseline:.0f} msgs/s", flush=True)
        rate = segmail_rate(kannel, engine, args.contacts, folder)
    print(
        f"segmail: send_sms_batch + KannelGateway ({args.db}): {rate:.0f} msgs/s ({rate / baseline:.0%} of the baseline)"
    )
    print(f"RESULT sms: {rate:.0f} msgs/s through Kannel (fakesmsc)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
