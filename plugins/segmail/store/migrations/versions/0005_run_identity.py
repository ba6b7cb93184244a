"""run identity: a mailing run keyed by (mailing, logical date) as well

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("segmail_mailing_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("logical_date", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_unique_constraint(
            batch_op.f("uq_segmail_mailing_runs_mailing_logical_date"), ["mailing", "logical_date"]
        )


def downgrade() -> None:
    with op.batch_alter_table("segmail_mailing_runs", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_segmail_mailing_runs_mailing_logical_date"), type_="unique")
        batch_op.drop_column("logical_date")
