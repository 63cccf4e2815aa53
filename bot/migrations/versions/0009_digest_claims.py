"""one sender per subscription: a claim (owner + lease) taken before anything is posted,
and the moment a digest's parent message was sent for, so a lost answer can be found

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 07:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('subscriptions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claimed_by', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('claim_expires_at', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('digests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('parent_sent_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('digests', schema=None) as batch_op:
        batch_op.drop_column('parent_sent_at')
    with op.batch_alter_table('subscriptions', schema=None) as batch_op:
        batch_op.drop_column('claim_expires_at')
        batch_op.drop_column('claimed_by')
