"""Links from tasks and e-mails into segmail's pages, which the plugin mounts in Airflow's api-server.

Built like the pages build theirs (`web.monitoring._dag_run_url`): from where segmail is mounted,
one level below Airflow's root. Inside Airflow's UI a path is enough (the api-server root is
`[api] base_url`'s path, default `/`); an e-mail needs the absolute URL, so it needs `[api] base_url`
and falls back to the path when that is not configured.
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit

# segmail.web.plugin.URL_PREFIX (not imported: importing the plugin module builds the web app).
PLUGIN_PREFIX = "/segmail"


def _airflow_base_url() -> str:
    from airflow.configuration import conf

    return (conf.get("api", "base_url", fallback="") or "").rstrip("/")


def segmail_url(path: str, *, absolute: bool = False) -> str:
    """`path` under segmail's pages: `/segmail/...` below the api-server root, with scheme and host
    when `absolute` and `[api] base_url` is set."""
    base = _airflow_base_url()
    root = base if absolute else urlsplit(base).path.rstrip("/")
    return f"{root}{PLUGIN_PREFIX}{path}"


def preview_url(*, slug: str, mailing_run_id: int, absolute: bool = False) -> str:
    """The preview page of a frozen run (web.monitoring: `/mailings/<slug>/preview?run=<id>`)."""
    return segmail_url(f"/mailings/{quote(slug, safe='')}/preview?run={mailing_run_id}", absolute=absolute)


def run_url(*, mailing_run_id: int, absolute: bool = False) -> str:
    """The monitoring page of a mailing run."""
    return segmail_url(f"/runs/{mailing_run_id}", absolute=absolute)
