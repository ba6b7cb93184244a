"""Airflow plugin: mounts segmail's monitoring pages in the api-server and adds them to the UI nav."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from segmail.orchestration.links import MailingRunLink

URL_PREFIX = "/segmail"


def _app():  # noqa: ANN202 - built on import by the api-server only
    from segmail.web.monitoring import create_app

    return create_app()


class SegmailUiPlugin(AirflowPlugin):
    name = "segmail_ui"
    fastapi_apps = [{"app": _app(), "url_prefix": URL_PREFIX, "name": "segmail"}]
    operator_extra_links = [MailingRunLink()]
    external_views = [
        {
            "name": "Segment mailings",
            "href": f"{URL_PREFIX}/",
            "destination": "nav",
            "url_route": "segment-mailings",
        },
    ]
