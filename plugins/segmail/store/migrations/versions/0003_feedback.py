"""feedback: suppression list, unsubscribe time per delivery, opt-out run, activity kinds

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('segmail_suppressions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('address_key', sa.String(length=320), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('source', sa.String(length=30), nullable=False),
    sa.Column('mailing_run_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_segmail_suppressions')),
    sa.UniqueConstraint('address_key', name=op.f('uq_segmail_suppressions_address_key'))
    )
    with op.batch_alter_table('segmail_contacts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('email_opt_out_run_id', sa.Integer(), nullable=True))
    with op.batch_alter_table('segmail_deliveries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('unsubscribed_at', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('segmail_activity_log', schema=None) as batch_op:
        batch_op.drop_constraint('uq_segmail_activity_log_mailing_run_id_contact_id', type_='unique')
        batch_op.create_unique_constraint(
            'uq_segmail_activity_log_mailing_run_id_contact_id_kind', ['mailing_run_id', 'contact_id', 'kind']
        )
        batch_op.alter_column('mailing', existing_type=sa.String(length=100), nullable=True)
        batch_op.alter_column('mailing_run_id', existing_type=sa.Integer(), nullable=True)
        batch_op.alter_column('subject', existing_type=sa.Text(), nullable=True)
        batch_op.add_column(sa.Column('detail', sa.Text(), nullable=True))


def downgrade() -> None:
    op.execute("DELETE FROM segmail_activity_log WHERE kind <> 'mailing'")
    with op.batch_alter_table('segmail_activity_log', schema=None) as batch_op:
        batch_op.drop_column('detail')
        batch_op.alter_column('subject', existing_type=sa.Text(), nullable=False)
        batch_op.alter_column('mailing_run_id', existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column('mailing', existing_type=sa.String(length=100), nullable=False)
        batch_op.drop_constraint('uq_segmail_activity_log_mailing_run_id_contact_id_kind', type_='unique')
        batch_op.create_unique_constraint(
            'uq_segmail_activity_log_mailing_run_id_contact_id', ['mailing_run_id', 'contact_id']
        )
    with op.batch_alter_table('segmail_deliveries', schema=None) as batch_op:
        batch_op.drop_column('unsubscribed_at')
    with op.batch_alter_table('segmail_contacts', schema=None) as batch_op:
        batch_op.drop_column('email_opt_out_run_id')
    op.drop_table('segmail_suppressions')
