"""Batches planned while a run is frozen (no approval) are the batches `plan_batches` would plan
after it, and planning then only marks the run as sending."""

from __future__ import annotations

from segmail.mailings.audience import freeze_audience
from segmail.mailings.definition import get_mailing
from segmail.mailings.deliveries import plan_batches
from segmail.store.models import DeliveryStatus, RunStatus
from sqlalchemy import text


def _composition(engine, run_id: int) -> list[tuple[int, str, int, list[int]]]:
    """Per batch: number, language, size and the contacts in it."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT b.batch_no, b.language, b.size, d.contact_id FROM segmail_delivery_batches b"
                " JOIN segmail_deliveries d ON d.batch_id = b.id WHERE b.mailing_run_id = :r"
                " ORDER BY b.batch_no, d.contact_id"
            ),
            {"r": run_id},
        ).all()
    batches: dict[int, tuple[str, int, list[int]]] = {}
    for batch_no, language, size, contact_id in rows:
        batches.setdefault(batch_no, (language, size, []))[2].append(contact_id)
    return [(no, *batch) for no, batch in sorted(batches.items())]


def _run(engine, run_id: int) -> tuple[str, list[tuple[str, str | None]]]:
    with engine.connect() as conn:
        status = conn.execute(
            text("SELECT status FROM segmail_mailing_runs WHERE id = :r"), {"r": run_id}
        ).scalar_one()
        deliveries = conn.execute(
            text(
                "SELECT status, batch_id FROM segmail_deliveries WHERE mailing_run_id = :r ORDER BY id"
            ),
            {"r": run_id},
        ).all()
    return status, [(s, b) for s, b in deliveries]


def test_batches_planned_at_freeze_are_the_ones_planning_would_make(newsletter_audience):
    engine = newsletter_audience
    mailing = get_mailing("newsletter")
    planned_later = freeze_audience(mailing, dag_run_id="plan-after", engine=engine)
    plan_batches(planned_later, batch_size=2, engine=engine)

    planned_at_freeze = freeze_audience(mailing, dag_run_id="plan-at-freeze", batch_size=2, engine=engine)
    status, deliveries = _run(engine, planned_at_freeze)
    assert status == RunStatus.FROZEN
    assert {s for s, b in deliveries if b is None} == {DeliveryStatus.SKIPPED}  # skips are in no batch
    assert all(b is not None for s, b in deliveries if s == DeliveryStatus.PENDING)

    composition = _composition(engine, planned_at_freeze)
    assert len(composition) >= 3  # several languages, some split in two
    assert composition == _composition(engine, planned_later)

    # Planning keeps the freeze's batches (whatever size it is asked for) and marks the run as sending.
    refs = plan_batches(planned_at_freeze, batch_size=500, engine=engine)
    assert [r["size"] for r in refs] == [size for _, _, size, _ in composition]
    assert _composition(engine, planned_at_freeze) == composition
    assert _run(engine, planned_at_freeze)[0] == RunStatus.SENDING
    assert plan_batches(planned_at_freeze, batch_size=2, engine=engine) == refs


def test_a_retried_freeze_plans_nothing_twice(newsletter_audience):
    engine = newsletter_audience
    mailing = get_mailing("newsletter")
    run_id = freeze_audience(mailing, dag_run_id="retried", batch_size=2, engine=engine)
    before = _composition(engine, run_id)
    assert freeze_audience(mailing, dag_run_id="retried", batch_size=2, engine=engine) == run_id
    assert _composition(engine, run_id) == before
