"""bounces: processed feedback reports, bounce and complaint per delivery

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('segmail_feedback_reports',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('report_key', sa.String(length=250), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('outcome', sa.String(length=20), nullable=False),
    sa.Column('severity', sa.String(length=10), nullable=True),
    sa.Column('delivery_id', sa.Integer(), nullable=True),
    sa.Column('mailing_run_id', sa.Integer(), nullable=True),
    sa.Column('contact_id', sa.Integer(), nullable=True),
    sa.Column('address', sa.String(length=320), nullable=True),
    sa.Column('status_code', sa.String(length=20), nullable=True),
    sa.Column('action', sa.String(length=20), nullable=True),
    sa.Column('diagnostic', sa.Text(), nullable=True),
    sa.Column('detector', sa.String(length=60), nullable=True),
    sa.Column('confidence', sa.String(length=10), nullable=True),
    sa.Column('sender', sa.String(length=320), nullable=True),
    sa.Column('subject', sa.Text(), nullable=True),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.Column('reported_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('processed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_segmail_feedback_reports')),
    sa.UniqueConstraint('report_key', name=op.f('uq_segmail_feedback_reports_report_key'))
    )
    op.create_index(op.f('ix_segmail_feedback_reports_mailing_run_id'), 'segmail_feedback_reports', ['mailing_run_id'], unique=False)
    with op.batch_alter_table('segmail_deliveries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('bounce', sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column('bounced_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('complained_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    # `bounced` is a status the previous schema's code does not know: those mails were sent.
    op.execute("UPDATE segmail_deliveries SET status = 'sent' WHERE status = 'bounced'")
    with op.batch_alter_table('segmail_deliveries', schema=None) as batch_op:
        batch_op.drop_column('complained_at')
        batch_op.drop_column('bounced_at')
        batch_op.drop_column('bounce')
    op.drop_index(op.f('ix_segmail_feedback_reports_mailing_run_id'), table_name='segmail_feedback_reports')
    op.drop_table('segmail_feedback_reports')
