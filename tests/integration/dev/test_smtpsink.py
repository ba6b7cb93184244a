"""The local SMTP sink of `make airflow`: a restart continues the numbering instead of overwriting
mails, and SIGTERM or Ctrl-C stop it quietly."""

from __future__ import annotations

import signal
import smtplib
import subprocess
import sys

import pytest
from segmail.dev.smtpsink import SmtpSink, free_port


def _send(port: int, text: str) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.sendmail("a@example.com", ["b@example.com"], f"Subject: {text}\r\n\r\n{text}\r\n")


def test_a_restarted_sink_numbers_on_and_never_overwrites(tmp_path):
    outbox = tmp_path / "outbox"
    for text in ("first", "second"):  # two runs of `make airflow` on one outbox
        with SmtpSink(store_dir=outbox) as sink:
            _send(sink.port, text)
    outbox.joinpath("000007.eml").write_bytes(b"kept by hand")
    with SmtpSink(store_dir=outbox) as sink:
        _send(sink.port, "third")
    names = sorted(p.name for p in outbox.iterdir())
    assert names == ["000001.eml", "000002.eml", "000007.eml", "000008.eml"]
    assert b"Subject: first" in (outbox / "000001.eml").read_bytes()
    assert b"Subject: second" in (outbox / "000002.eml").read_bytes()
    assert (outbox / "000007.eml").read_bytes() == b"kept by hand"


def test_a_sink_that_keeps_nothing_in_memory_still_numbers_its_files(tmp_path):
    with SmtpSink(store_dir=tmp_path) as sink:
        sink.handler.keep = False
        for text in ("a", "b"):
            _send(sink.port, text)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["000001.eml", "000002.eml"]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "ctrl-c"])
def test_the_sink_process_stops_quietly(tmp_path, signum):
    port = free_port()
    sink = subprocess.Popen(
        [sys.executable, "-m", "segmail.dev.smtpsink", str(tmp_path), str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert sink.stdout.readline().startswith(f"SMTP sink on 127.0.0.1:{port}")
    _send(port, "hello")
    sink.send_signal(signum)
    assert sink.wait(timeout=10) == 0
    assert sink.stderr.read() == ""  # no KeyboardInterrupt traceback
    assert (tmp_path / "000001.eml").is_file()


_MASKING_PROBE = """
from airflow.sdk import Connection
from airflow.sdk._shared.secrets_masker.secrets_masker import SecretsMasker
conn = Connection.get("sink")
print(conn.extra_dejson["disable_tls"], conn.port, SecretsMasker._has_warned_short_secret)
"""


@pytest.mark.parametrize(
    ("form", "warned"),
    [pytest.param("connection_json", False, id="json"), pytest.param("connection_uri", True, id="uri")],
)
def test_the_sink_connection_causes_no_short_secret_warning(form, warned):
    """Airflow masks every string extra as a secret and warns about short ones ("true", "10"): the
    connection `make demo`/`make airflow` hand to tasks has typed extras, which are not secrets."""
    import os

    with SmtpSink() as sink:
        env = {**os.environ, "AIRFLOW_CONN_SINK": getattr(sink, form)}
        done = subprocess.run(
            [sys.executable, "-c", _MASKING_PROBE], env=env, capture_output=True, text=True, check=True
        )
    disable_tls, port, has_warned = done.stdout.splitlines()[-1].split()
    assert disable_tls.lower() == "true" and int(port) == sink.port
    assert has_warned == str(warned)
    assert ("Skipping masking for a secret" in done.stdout + done.stderr) is warned
