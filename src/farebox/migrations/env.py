"""Alembic environment: runs against the connection farebox hands it."""

from __future__ import annotations

from alembic import context

from farebox.storage.tables import metadata

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `farebox migrate` (farebox.storage.migrate)")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True, compare_type=True)
with context.begin_transaction():
    context.run_migrations()
