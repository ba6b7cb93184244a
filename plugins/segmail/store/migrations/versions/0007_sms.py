"""SMS channel: the channel of a mailing run, SMS opt-outs on contacts, a salesperson's mobile, and
the number, parts and delivery-report time of an SMS delivery

Existing runs are e-mail runs and existing contacts have no SMS opt-out (server defaults). The
gateway's code and reply go to the deliveries' smtp_code and smtp_response ("the server's last
code and reply"). `delivered` and `expired` are new delivery statuses (a String column: nothing to
migrate); a downgrade turns them back into `sent`, which is what they were before the report.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("segmail_mailing_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("channel", sa.String(length=10), nullable=False, server_default="email"))
    with op.batch_alter_table("segmail_contacts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sms_opt_out", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("sms_opt_out_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("sms_opt_out_source", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("sms_opt_out_run_id", sa.Integer(), nullable=True))
        batch_op.create_index("ix_segmail_contacts_mobile_e164", ["mobile_e164"], unique=False)
    with op.batch_alter_table("segmail_salespeople", schema=None) as batch_op:
        batch_op.add_column(sa.Column("mobile_e164", sa.String(length=20), nullable=True))
    with op.batch_alter_table("segmail_deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("mobile_e164", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("sms_parts", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("reported_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    # SMS runs cannot be shown by the previous schema's code: their rows go with them (children first:
    # on SQLite foreign keys are off while migrating, so nothing cascades).
    sms_runs = "SELECT id FROM segmail_mailing_runs WHERE channel = 'sms'"
    op.execute("DELETE FROM segmail_activity_log WHERE kind IN ('sms', 'sms report', 'sms opt-out')")
    for table in ("segmail_activity_log", "segmail_deliveries", "segmail_delivery_batches"):
        op.execute(f"DELETE FROM {table} WHERE mailing_run_id IN ({sms_runs})")
    op.execute(f"DELETE FROM segmail_mailing_runs WHERE id IN ({sms_runs})")
    op.execute("UPDATE segmail_deliveries SET status = 'sent' WHERE status IN ('delivered', 'expired')")
    with op.batch_alter_table("segmail_deliveries", schema=None) as batch_op:
        batch_op.drop_column("reported_at")
        batch_op.drop_column("sms_parts")
        batch_op.drop_column("mobile_e164")
    with op.batch_alter_table("segmail_salespeople", schema=None) as batch_op:
        batch_op.drop_column("mobile_e164")
    with op.batch_alter_table("segmail_contacts", schema=None) as batch_op:
        batch_op.drop_index("ix_segmail_contacts_mobile_e164")
        batch_op.drop_column("sms_opt_out_run_id")
        batch_op.drop_column("sms_opt_out_source")
        batch_op.drop_column("sms_opt_out_at")
        batch_op.drop_column("sms_opt_out")
    with op.batch_alter_table("segmail_mailing_runs", schema=None) as batch_op:
        batch_op.drop_column("channel")
