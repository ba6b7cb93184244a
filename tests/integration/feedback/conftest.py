"""The public app on a real uvicorn server, signing with the key tests/conftest.py configures."""

from __future__ import annotations

import threading
import time

import pytest
import uvicorn
from conftest import TEST_SIGNING_KEY as KEY
from segmail.dev.smtpsink import free_port
from segmail.feedback.tokens import TokenSigner
from segmail.web.public import PublicContext, create_public_app


@pytest.fixture
def public_url(newsletter_audience):
    """The app served by uvicorn on a free loopback port, on the test database."""
    engine = newsletter_audience
    app = create_public_app(lambda: PublicContext(engine=engine, signer=TokenSigner((KEY,))))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{server.config.port}"
    server.should_exit = True
    thread.join(timeout=10)
