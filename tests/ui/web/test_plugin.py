"""The plugin as the api-server loads it: once, through its entry point, with its views."""

from __future__ import annotations

import httpx


def test_the_plugin_is_loaded_once_with_the_nav_entry_and_the_dag_run_view(api_server):
    base, token, _ids = api_server
    auth = {"Authorization": f"Bearer {token}"}
    plugins = httpx.get(f"{base}/api/v2/plugins", headers=auth).json()["plugins"]
    (ours,) = [p for p in plugins if p["name"] == "segmail_ui"]
    assert [app["url_prefix"] for app in ours["fastapi_apps"]] == ["/segmail"]
    views = {view["name"]: view for view in ours["external_views"]}
    assert views["Mailings"]["destination"] == "nav"
    assert views["Mailings"]["href"] == "/segmail/"
    assert views["Mailings"]["url_route"] == "mailings"
    assert views["Mailing run"]["destination"] == "dag_run"
    assert views["Mailing run"]["href"] == "/segmail/dag-runs/{DAG_ID}/{RUN_ID}"
    # A second load (the plugins folder and the entry point) would be reported as "already registered".
    errors = httpx.get(f"{base}/api/v2/plugins/importErrors", headers=auth).json()
    assert errors["import_errors"] == []


def test_the_plugin_class_needs_no_private_airflow_operator():
    from segmail.web.plugin import SegmailUiPlugin

    assert SegmailUiPlugin.operator_extra_links == []
    assert {view["destination"] for view in SegmailUiPlugin.external_views} == {"nav", "dag_run"}
