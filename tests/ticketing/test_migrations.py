"""The Alembic migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect
from sqlmodel import SQLModel

from ticketing.db import migrate


def test_migrations_match_the_models(engine: Engine) -> None:
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert diff == []


def test_migrating_twice_is_harmless(engine: Engine) -> None:
    migrate(engine)
    names = set(inspect(engine).get_table_names())
    assert {"ticket", "ledgerentry", "outbox", "accountstate", "ticketentry", "agent", "alembic_version"} <= names


def test_one_ticket_per_post_is_a_database_constraint(engine: Engine) -> None:
    uniques = {tuple(u["column_names"]) for u in inspect(engine).get_unique_constraints("ticket")}
    assert ("platform", "post_id") in uniques
    outbox = {tuple(u["column_names"]) for u in inspect(engine).get_unique_constraints("outbox")}
    assert ("platform", "in_reply_to") in outbox
