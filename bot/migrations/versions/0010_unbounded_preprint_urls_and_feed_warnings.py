"""bad input never costs good data: preprint URLs unbounded (tracking-laden links run to
thousands of characters), and the last poll's warnings kept on the feed

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 07:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('preprints', schema=None) as batch_op:
        batch_op.alter_column('url', existing_type=sa.String(length=2000), type_=sa.Text(), existing_nullable=False)
    with op.batch_alter_table('feeds', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_warning', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('feeds', schema=None) as batch_op:
        batch_op.drop_column('last_warning')
    with op.batch_alter_table('preprints', schema=None) as batch_op:
        batch_op.alter_column('url', existing_type=sa.Text(), type_=sa.String(length=2000), existing_nullable=False)
