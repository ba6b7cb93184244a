"""The approval step of a mailing DAG (`approval: {required: true}`): Airflow's ApprovalOperator from
the standard provider, asking in Required Actions once the audience is frozen.

Airflow does the waiting (the task parks in `awaiting_input`, holding no worker slot), the form
(Approve/Reject plus the languages and the recipient cap, the trigger form's "dialog"), who may
answer (`assigned_users`), and the timeout (the scheduler applies `defaults`: Reject, or Approve
with `on_timeout: approve`). segmail fills in the request from the frozen run when the task starts,
e-mails it through the SMTP provider's notifier, and applies the answer to the run before batches
are planned (segmail.mailings.approval). On Reject the operator skips the send path; the summary
still runs and keeps the run `rejected`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.providers.smtp.notifications.smtp import SmtpNotifier
from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk import Param
from airflow.sdk.definitions.param import ParamsDict

from segmail.mailings.definition import Mailing, OnTimeout

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow.sdk import Context

FREEZE_TASK = "freeze_audience"
TASK_ID = "approve"


class ApprovalRequestNotifier(SmtpNotifier):
    """SmtpNotifier whose subject and body are final text: a `{{` in a mailing's subject is not a
    template of the notification."""

    template_fields = ("from_email", "to", "smtp_conn_id")


def approval_params(*, variants: list[str], languages: list[str] | None = None) -> dict[str, Param]:
    """The part of the trigger form an approver may still narrow."""
    return {
        "languages": Param(
            list(languages if languages is not None else variants),
            type="array",
            items={"type": "string", "enum": list(variants)},
            title="Languages to send",
            description="Contacts of a language you deselect are skipped, not sent.",
            source="task",
        ),
        "max_recipients": Param(
            0,
            type="integer",
            minimum=0,
            title="Recipient cap",
            description="Send to at most this many (in contact order); 0 = everyone in the run.",
            source="task",
        ),
    }


class MailingApprovalOperator(ApprovalOperator):
    """Asks whether to send a frozen run; its answer narrows or rejects the run before batches exist."""

    template_fields = ()  # the body is written from the frozen run when the task starts

    def __init__(self, *, mailing: Mailing, **kwargs: Any) -> None:
        approval = mailing.approval
        self.slug = mailing.slug
        self.timeout_hours = approval.timeout_hours
        on_timeout = self.APPROVE if approval.on_timeout == OnTimeout.APPROVE else self.REJECT
        kwargs.pop("params", None)  # the DAG's trigger form (merged in by Airflow); this form is its own
        super().__init__(
            task_id=TASK_ID,
            subject=f"Send the mailing “{mailing.name}”?",
            body="The request is written from the frozen audience when this task starts.",
            defaults=[on_timeout],
            params=approval_params(variants=list(mailing.variants)),
            assigned_users=[{"id": name, "name": name} for name in approval.approvers] or None,
            response_timeout=timedelta(hours=approval.timeout_hours),
            retries=0,
            **kwargs,
        )

    def execute(self, context: Context) -> None:
        from segmail.orchestration import tasks

        run_id = context["ti"].xcom_pull(task_ids=FREEZE_TASK)
        request = tasks.approval_request(self.slug, mailing_run_id=run_id)
        self.body = request["body"]
        self.params = ParamsDict(
            approval_params(variants=request["variants"], languages=request["languages"])
        )
        self.notifiers = self._notifiers(request, context)
        super().execute(context)  # writes the request, e-mails it, parks the task in awaiting_input

    def _notifiers(self, request: dict, context: Context) -> list[SmtpNotifier]:
        if not request["notify"]:
            return []
        notifier = ApprovalRequestNotifier(
            to=request["notify"],
            from_email=request["from_email"],
            subject=f"[segmail] Approval needed: {self.subject}",
            html_content=request["html"] + self._answer_link(context),
            smtp_conn_id=request["smtp_conn_id"],
        )
        return [notifier]

    def _answer_link(self, context: Context) -> str:
        try:
            url = self.generate_link_to_ui_from_context(context=context)
        except ValueError:  # no [api] base_url: the mail cannot link into the UI
            return "<p>Answer in Airflow under Required Actions.</p>"
        return f'<p><a href="{url}">Answer in Airflow (Required Actions)</a></p>'

    def validate_params_input(self, params_input: Mapping) -> None:
        """As ApprovalOperator checks an answer, except that an answer may leave fields out (a REST
        client that sets only the cap): a field left out keeps its default, so the run is not
        narrowed by it. A field the form does not have is still refused."""
        unknown = sorted(set(params_input) - set(self.params))
        if unknown:
            raise ValueError(f"the answer has fields the approval form does not have: {', '.join(unknown)}")
        for key, value in params_input.items():
            self.params[key] = value

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        """Apply the answer to the run, then let ApprovalOperator skip the send path on Reject."""
        from segmail.orchestration import tasks

        if "error" in event:  # no answer and no defaults: the operator raises HITLTimeoutError
            return super().execute_complete(context, event)
        # Checked as the operator checks them, but before anything is written to the run.
        self.validate_chosen_options(event["chosen_options"])
        self.validate_params_input(event.get("params_input") or {})
        decision = tasks.apply_approval(
            self.slug,
            mailing_run_id=context["ti"].xcom_pull(task_ids=FREEZE_TASK),
            event=event,
            timeout_hours=self.timeout_hours,
        )
        self.log.info("mailing run %s: %s", decision["mailing_run_id"], decision["reason"])
        super().execute_complete(context, event)
        return decision
