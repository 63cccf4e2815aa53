"""Alembic environment: runs on the connection `bot.db.migrate` hands over."""

from alembic import context

from bot.db import Base

target_metadata = Base.metadata
connection = context.config.attributes.get("connection")

if connection is None:
    raise RuntimeError("run migrations through bot.db.migrate (scout init)")


def include_object(obj, name, type_, reflected, compare_to) -> bool:
    # slack_sdk's installation and state stores own their tables (created in 0004);
    # autogenerate must not offer to drop them.
    if type_ == "table" and reflected and compare_to is None and name.startswith("slack_"):
        return False
    # The full-text search index (0012) lives beside the models: an FTS5 table and its
    # shadow tables on SQLite, a generated column and its index on PostgreSQL.
    return not (
        reflected and compare_to is None and (name or "").startswith(("preprints_fts", "search", "ix_preprints_search"))
    )


context.configure(
    connection=connection, target_metadata=target_metadata, render_as_batch=True, include_object=include_object
)
with context.begin_transaction():
    context.run_migrations()
