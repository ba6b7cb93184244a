"""shared send budgets (max_per_hour / max_per_day)

One row per (scope, period, start): how many mails a mailing or a connection has used of its cap
in that hour or day. A new table, so this revision touches nothing another revision changes.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "segmail_send_budgets",
        sa.Column("scope", sa.String(length=200), nullable=False),
        sa.Column("period", sa.String(length=10), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used", sa.Integer(), nullable=False),
        sa.Column("cap", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("scope", "period", "starts_at", name=op.f("pk_segmail_send_budgets")),
    )


def downgrade() -> None:
    op.drop_table("segmail_send_budgets")
