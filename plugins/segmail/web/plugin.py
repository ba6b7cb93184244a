"""Airflow plugin (registered through the `airflow.plugins` entry point in pyproject.toml): mounts
segmail's monitoring pages in the api-server, lists them in the UI navigation, and shows a mailing
run's page as a tab of its DAG run (`destination: "dag_run"`; the UI fills in {DAG_ID} and {RUN_ID})."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.plugins_manager import AirflowPlugin

if TYPE_CHECKING:
    from fastapi import FastAPI

URL_PREFIX = "/segmail"


def _app() -> FastAPI:
    """The monitoring app, built when the plugin is loaded."""
    from segmail.web.monitoring import create_app

    return create_app()


class SegmailUiPlugin(AirflowPlugin):
    name = "segmail_ui"
    fastapi_apps = [{"app": _app(), "url_prefix": URL_PREFIX, "name": "segmail"}]
    external_views = [
        {
            "name": "Mailings",  # the sidebar shows about nine characters under the icon
            "href": f"{URL_PREFIX}/",
            "destination": "nav",
            "url_route": "mailings",
            "icon": f"{URL_PREFIX}/icon.svg",
            "icon_dark_mode": f"{URL_PREFIX}/icon-dark.svg",
        },
        {
            "name": "Mailing run",
            "href": f"{URL_PREFIX}/dag-runs/{{DAG_ID}}/{{RUN_ID}}",
            "destination": "dag_run",
            "url_route": "mailing-run",
        },
    ]
