"""The public unsubscribe app on a real uvicorn server, shared by the feedback and browser tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from segmail.dev.smtpsink import free_port
from segmail.feedback.tokens import TokenSigner
from segmail.web.public import PublicContext, create_public_app
from sqlalchemy import Engine
from tests_support import TEST_SIGNING_KEY


@contextmanager
def serve_public_app(engine: Engine, *, port: int | None = None) -> Iterator[str]:
    """`create_public_app()` on a free loopback port, on the given database, signing with the key
    tests/conftest.py configures; yields its base URL and stops the server afterwards. `port`: a
    given one (the SMS tests' Kannel calls a URL fixed when it started), else a free one."""
    app = create_public_app(lambda: PublicContext(engine=engine, signer=TokenSigner((TEST_SIGNING_KEY,))))
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port or free_port(), log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{server.config.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
