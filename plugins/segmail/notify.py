"""Completion notices through the SMTP provider's notifier."""

from __future__ import annotations

import os

SMTP_CONN_ID = "smtp_default"


def send_import_notice(*, to: str, totals: dict) -> None:
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    rows = "".join(f"<tr><th align='left'>{k}</th><td>{totals[k]}</td></tr>" for k in totals)
    SmtpNotifier(
        to=to,
        from_email=os.environ.get("SEGMAIL_NOTIFY_FROM", "segmail@localhost"),
        subject=f"segmail import: {totals['imported_files']} file(s), {totals['created']} created, "
        f"{totals['updated']} updated, {totals['rejected']} rejected",
        html_content=f"<table>{rows}</table>",
        smtp_conn_id=os.environ.get("SEGMAIL_SMTP_CONN_ID", SMTP_CONN_ID),
    ).notify({})
