"""Alembic environment for wp's store: runs migrations on the connection SqlStore hands over.

Must never open its own engine from a config file: `SqlStore` passes `config.attributes["connection"]`.
"""

from __future__ import annotations

from alembic import context

from reconciler.store.tables import metadata


def run_migrations_online() -> None:
    connection = context.config.attributes["connection"]
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
