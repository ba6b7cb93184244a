"""The public app on a real uvicorn server, signing with the key tests/conftest.py configures."""

from __future__ import annotations

import pytest
from feedback_support import serve_public_app


@pytest.fixture
def public_url(newsletter_audience):
    """The app served by uvicorn on a free loopback port, on the test database."""
    with serve_public_app(newsletter_audience) as url:
        yield url
