"""Completion notices through the SMTP provider's notifier."""

from __future__ import annotations

from segmail import settings


def send_import_notice(*, to: str, totals: dict) -> None:
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    config = settings.current()
    rows = "".join(f"<tr><th align='left'>{k}</th><td>{totals[k]}</td></tr>" for k in totals)
    SmtpNotifier(
        to=to,
        from_email=config.notify_from,
        subject=f"segmail import: {totals['imported_files']} file(s), {totals['created']} created, "
        f"{totals['updated']} updated, {totals['rejected']} rejected",
        html_content=f"<table>{rows}</table>",
        smtp_conn_id=config.smtp_conn_id,
    ).notify({})
