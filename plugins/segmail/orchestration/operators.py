"""Operators of the mailing DAGs where a plain `@task` is not enough.

`SendBatchOperator` sends one mapped batch and, when the mailing's send window is closed or a
shared cap has run out (`segmail.throttle.gate`), defers itself with a `DateTimeTrigger` until the
moment sending may go on: the waiting batch holds no worker and no pool slot (the `smtp` pool does
not count deferred tasks), and Airflow's triggerer wakes it. Resumed, it sends the mails still
`pending` — exactly-once holds across the pause as across a retry. A pause is not a try: retries
stay for SMTP's temporary failures. The counts of the turns before a pause travel with the deferral,
so the task's result counts the whole batch, not its last turn. Imported by the DAG files, so
nothing heavy at the top.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import BaseOperator

TURN_COUNTS = ("sent", "failed", "skipped")  # what a batch's turns add up to (pending: the last turn's)


class SendBatchOperator(BaseOperator):
    """Send one batch of a mailing run; wait deferred for the send window or the budget."""

    ui_color = "#e8f0fe"

    def __init__(self, *, slug: str, batch: dict, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.slug = slug
        self.batch = batch

    def execute(self, context: Any) -> dict:
        return self._send(context)

    def resume(self, context: Any, event: Any = None, earlier: dict | None = None) -> dict:
        """Called by Airflow when the trigger fires: the window is open or the budget refilled."""
        return self._send(context, earlier=earlier)

    def _send(self, context: Any, *, earlier: dict | None = None) -> dict:
        from segmail.orchestration import tasks

        context["batch"] = self.batch  # for map_index_template, as @task's arguments are
        result = with_earlier_turns(tasks.send_batch(self.slug, self.batch), earlier)
        if result.get("wait_until"):
            self._wait(result)
        return result

    def _wait(self, result: dict) -> None:
        from airflow.providers.standard.triggers.temporal import DateTimeTrigger

        moment = datetime.fromisoformat(result["wait_until"])
        self.log.info(
            "%s mail(s) wait until %s: %s (sent %s so far)",
            result["waiting"],
            moment.isoformat(),
            result["wait_reason"],
            result["sent"],
        )
        earlier = {key: result[key] for key in TURN_COUNTS}
        self.defer(trigger=DateTimeTrigger(moment=moment), method_name="resume", kwargs={"earlier": earlier})


def with_earlier_turns(result: dict, earlier: dict | None) -> dict:
    """A turn's result with the counts of the turns before its pauses added in."""
    return result | {key: result.get(key, 0) + (earlier or {}).get(key, 0) for key in TURN_COUNTS}
