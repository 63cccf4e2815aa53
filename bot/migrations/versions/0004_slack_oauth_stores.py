"""slack_sdk's OAuth installation and state stores (multi-workspace installs)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 02:00:00.000000

The tables are slack_sdk's own (SQLAlchemyInstallationStore, SQLAlchemyOAuthStateStore),
built from the store classes so their columns always match what the stores query.
"""
from alembic import op
import sqlalchemy as sa
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def _metadata() -> sa.MetaData:
    metadata = sa.MetaData()
    SQLAlchemyInstallationStore.build_installations_table(
        metadata, SQLAlchemyInstallationStore.default_installations_table_name
    )
    SQLAlchemyInstallationStore.build_bots_table(metadata, SQLAlchemyInstallationStore.default_bots_table_name)
    SQLAlchemyOAuthStateStore.build_oauth_states_table(metadata, SQLAlchemyOAuthStateStore.default_table_name)
    return metadata


def upgrade() -> None:
    _metadata().create_all(op.get_bind())


def downgrade() -> None:
    _metadata().drop_all(op.get_bind())
