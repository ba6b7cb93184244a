"""Links into segmail's pages from tasks and e-mails: the plugin's mount point below Airflow's root."""

from __future__ import annotations

import pytest
from segmail.orchestration import links


@pytest.mark.parametrize(
    ("base_url", "absolute", "expected"),
    [
        pytest.param("", False, "/segmail/mailings/spring_offer/preview?run=7", id="default-root"),
        pytest.param("", True, "/segmail/mailings/spring_offer/preview?run=7", id="no-base-url-no-host"),
        pytest.param(
            "https://airflow.example.com/ops/",
            False,
            "/ops/segmail/mailings/spring_offer/preview?run=7",
            id="path",
        ),
        pytest.param(
            "https://airflow.example.com/ops",
            True,
            "https://airflow.example.com/ops/segmail/mailings/spring_offer/preview?run=7",
            id="absolute",
        ),
    ],
)
def test_preview_url(monkeypatch, base_url, absolute, expected):
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", base_url)
    assert links.preview_url(slug="spring_offer", mailing_run_id=7, absolute=absolute) == expected


def test_the_prefix_is_where_the_plugin_mounts_the_pages():
    from segmail.web.plugin import URL_PREFIX

    assert links.PLUGIN_PREFIX == URL_PREFIX
    assert links.run_url(mailing_run_id=3).endswith("/segmail/runs/3")
