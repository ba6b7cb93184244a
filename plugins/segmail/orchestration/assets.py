"""Assets shared by DAGs: imports produce `segmail://contacts`, `after_import` mailings consume it."""

from __future__ import annotations

from airflow.sdk import Asset

CONTACTS_ASSET = Asset(name="segmail_contacts", uri="segmail://contacts")
