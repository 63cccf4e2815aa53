"""fitted scoring model parameters

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 01:39:08.981190
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('scoring_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('model_blob', sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('scoring_runs', schema=None) as batch_op:
        batch_op.drop_column('model_blob')
