"""a subscription can be narrowed to keywords and subject categories, as a custom feed is

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 14:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('subscriptions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('keywords_json', sa.Text(), nullable=False, server_default='[]'))
        batch_op.add_column(sa.Column('categories_json', sa.Text(), nullable=False, server_default='[]'))


def downgrade() -> None:
    with op.batch_alter_table('subscriptions', schema=None) as batch_op:
        batch_op.drop_column('categories_json')
        batch_op.drop_column('keywords_json')
