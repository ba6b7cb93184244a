"""
### segments_admin

Manage segments and salespeople from the Airflow trigger form, without a shell: create, rename,
delete (contacts are kept), bulk assign or unassign by external ID or e-mail, and salespeople.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import Param, dag, task
from segmail.orchestration.admin_actions import ADMIN_ACTIONS


@dag(
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    doc_md=__doc__,
    tags=["segmail", "admin"],
    params={
        "action": Param("list_segments", enum=list(ADMIN_ACTIONS), description="What to do."),
        "segment": Param("", type="string", description="Segment name."),
        "new_name": Param("", type="string", description="New name (rename_segment)."),
        "salesperson": Param("", type="string", description="Salesperson code."),
        "description": Param("", type="string", description="Segment description (create_segment)."),
        "keys": Param(
            "",
            type="string",
            description="External IDs or e-mails, one per line (assign/unassign).",
            format="multiline",
        ),
        "keys_file": Param(
            "", type="string", description="Or a file with one key per line (assign/unassign)."
        ),
        "salesperson_name": Param("", type="string", description="Name (add_salesperson)."),
        "salesperson_email": Param("", type="string", description="E-mail (add_salesperson)."),
        "salesperson_mobile": Param(
            "",
            type="string",
            description="Mobile, e.g. +43 664 1234567, for SMS test messages (add_salesperson).",
        ),
    },
)
def segments_admin():
    @task(retries=0)
    def run_action(params: dict) -> dict:
        """One transaction per action; a mistake fails the task with the reason, nothing half-done."""
        from segmail.orchestration import tasks

        return tasks.run_admin_action(params)

    run_action()


segments_admin()
