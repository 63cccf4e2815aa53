"""index the text hashes the daily prune joins cached vectors against

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28 04:35:00
"""
from alembic import op


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_preprints_content_hash', 'preprints', ['content_hash'])
    op.create_index('ix_reference_papers_content_hash', 'reference_papers', ['content_hash'])


def downgrade() -> None:
    op.drop_index('ix_reference_papers_content_hash', table_name='reference_papers')
    op.drop_index('ix_preprints_content_hash', table_name='preprints')
