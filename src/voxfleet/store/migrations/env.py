"""Alembic environment for the store's migrations.

``voxfleet.store.migrate`` opens a connection and hands it over through
``config.attributes["connection"]``; the migrations run on it, inside its transaction.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from voxfleet.store.models import Base


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite cannot ALTER most things in place; batch mode rebuilds the table.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


_connection = context.config.attributes.get("connection")
if context.is_offline_mode() or not isinstance(_connection, Connection):
    raise RuntimeError(
        "the store's migrations run on a live connection: use voxfleet.store.migrate(engine), "
        "or voxfleet.store.db.alembic_config(connection) with alembic.command"
    )
run_migrations(_connection)
