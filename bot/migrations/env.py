"""Alembic environment: runs on the connection `bot.db.migrate` hands over."""

from alembic import context

from bot.db import Base

target_metadata = Base.metadata
connection = context.config.attributes.get("connection")

if connection is None:
    raise RuntimeError("run migrations through bot.db.migrate (scout init)")

context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
