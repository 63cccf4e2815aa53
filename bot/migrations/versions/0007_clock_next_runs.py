"""the active clock publishes its jobs' next run times

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 02:35:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('clock_leases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('next_runs', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('clock_leases', schema=None) as batch_op:
        batch_op.drop_column('next_runs')
