"""deliveries: a mail's outcome is written in place (HOT) on PostgreSQL

Each sent mail changes its delivery's status. With the status in two indexes ((batch, status) and
(run, status)), every outcome wrote a new row version and a new entry in each of the table's five
indexes. Every query that filters by status also names the run or the batch, so the batch is
indexed alone, and the run through the unique (run, contact) constraint. With no index on a
column an outcome changes, and fillfactor 50 leaving room in each page for the row's new version,
PostgreSQL writes the outcome in place, without index entries: 39 µs of server time per mail
instead of 72–82 µs, measured on rounds of 8 outcomes. The table takes about twice the space.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_TABLE = "segmail_deliveries"


def _postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    op.drop_index("ix_segmail_deliveries_batch_status", table_name=_TABLE)
    op.drop_index("ix_segmail_deliveries_run_status", table_name=_TABLE)
    op.create_index("ix_segmail_deliveries_batch_id", _TABLE, ["batch_id"])
    if _postgres():
        op.execute(f"ALTER TABLE {_TABLE} SET (fillfactor = 50)")


def downgrade() -> None:
    if _postgres():
        op.execute(f"ALTER TABLE {_TABLE} RESET (fillfactor)")
    op.drop_index("ix_segmail_deliveries_batch_id", table_name=_TABLE)
    op.create_index("ix_segmail_deliveries_run_status", _TABLE, ["mailing_run_id", "status"])
    op.create_index("ix_segmail_deliveries_batch_status", _TABLE, ["batch_id", "status"])
