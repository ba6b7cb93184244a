"""mailing approvals and rejected runs

One row per run that asked for approval (`approval: {required: true}`): the request, the answer,
who gave it (empty when the timeout decided), why, and what the approver narrowed. A rejected run
has status `rejected` in segmail_mailing_runs (a String column: nothing to migrate). A new table,
so this revision touches nothing another revision changes.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "segmail_approvals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mailing_run_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("approvers", sa.Text(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(length=200), nullable=True),
        sa.Column("timed_out", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("changes", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["mailing_run_id"],
            ["segmail_mailing_runs.id"],
            name=op.f("fk_segmail_approvals_mailing_run_id_segmail_mailing_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segmail_approvals")),
        sa.UniqueConstraint("mailing_run_id", name=op.f("uq_segmail_approvals_mailing_run_id")),
    )


def downgrade() -> None:
    # The previous schema's code knows no `rejected` run: it shows as what it is, a finished failure.
    op.execute("UPDATE segmail_mailing_runs SET status = 'failed' WHERE status = 'rejected'")
    op.drop_table("segmail_approvals")
