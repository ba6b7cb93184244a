"""Helpers shared by the mailing and feedback tests: a newsletter run as the DAG's tasks do it,
and its delivery rows read back."""

from __future__ import annotations

from sqlalchemy import text


def send_newsletter(engine, dag_run_id: str) -> int:
    """One run of the newsletter through `smtp_default`: freeze, plan, send every batch."""
    from segmail.mailings.audience import freeze_audience
    from segmail.mailings.definition import get_mailing
    from segmail.mailings.deliveries import plan_batches
    from segmail.mailings.send import send_batch
    from segmail.mailings.transport import SmtpHookTransport

    mailing = get_mailing("newsletter")
    run_id = freeze_audience(mailing, dag_run_id=dag_run_id, engine=engine)
    for batch in plan_batches(run_id, batch_size=500, engine=engine):
        send_batch(
            batch["batch_id"], mailing=mailing, engine=engine, transport=SmtpHookTransport("smtp_default")
        )
    return run_id


def delivery_rows(engine, run_id: int) -> dict[str, dict]:
    """external ID -> delivery row."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT c.external_id, d.* FROM segmail_deliveries d JOIN segmail_contacts c ON c.id = d.contact_id"
                " WHERE d.mailing_run_id = :r"
            ),
            {"r": run_id},
        ).all()
    return {r.external_id: dict(r._mapping) for r in rows}
