"""Alembic environment: migrations run on the connection (or engine) the daemon hands over (no alembic.ini)."""

from alembic import context
from sqlalchemy import Connection
from sqlmodel import SQLModel

import fairdesk.ticketing.models  # noqa: F401  (registers the tables on SQLModel.metadata)

config = context.config
target_metadata = SQLModel.metadata


def _upgrade(connection: Connection) -> None:
    # One transaction for the whole run, SQLite included: SQLite has transactional DDL (Alembic assumes not), and
    # its BEGIN IMMEDIATE then covers reading the version and every step, so a second daemon starting at the same
    # moment waits and sees all of the upgrade or none of it, never a half-applied version to repeat.
    context.configure(
        connection=connection, target_metadata=target_metadata, render_as_batch=True, transactional_ddl=True
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _upgrade(connection)
        return
    with config.attributes["engine"].connect() as connection:
        _upgrade(connection)


run_migrations_online()
