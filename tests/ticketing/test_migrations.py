"""The Alembic migrations build exactly the schema the models describe, on both databases, even in a start-up race."""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, event, inspect, text
from sqlmodel import SQLModel

from fairdesk.config.settings import Settings
from fairdesk.ticketing.db import alembic_config, make_engine, migrate

DAEMONS = 4


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


def _start_daemon(url: str, data_dir: str, barrier: Any, results: Any) -> None:
    """One daemon's start-up, in its own process: build (migrations, signing key) and the first agent."""
    from fairdesk.app import build
    from fairdesk.ticketing.agents import ensure_first_agent
    from fairdesk.ticketing.db import transaction
    from tests.support import fake_classify

    settings = Settings(data_dir=Path(data_dir), database_url=url)
    try:
        barrier.wait(timeout=120)
        daemon = build(settings, adapters={}, classify=fake_classify)
        try:
            with transaction(daemon.sessions) as session:
                first = ensure_first_agent(session=session)
        finally:
            daemon.close()
        results.put(("ok", first is not None))
    except Exception as exc:  # the parent asserts on it
        results.put(("error", f"{type(exc).__name__}: {exc}"[:400]))


def test_daemons_started_at_the_same_moment_on_a_fresh_database_all_start(db_url: str, tmp_path: Path) -> None:
    # Separate processes, released together: Alembic keeps per-process globals, so threads would not race honestly.
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(DAEMONS)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_start_daemon, args=(db_url, str(tmp_path / f"data{i}"), barrier, results))
        for i in range(DAEMONS)
    ]
    for proc in procs:
        proc.start()
    outcomes = [results.get(timeout=180) for _ in procs]
    for proc in procs:
        proc.join(timeout=60)
    assert [kind for kind, _ in outcomes] == ["ok"] * DAEMONS, outcomes
    assert sorted(created for _, created in outcomes) == [False] * (DAEMONS - 1) + [True]

    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT name FROM agent")).scalars().all() == ["admin"]
            keys = conn.execute(text("SELECT count(*) FROM setting WHERE key = 'web_secret_key'")).scalar()
            assert keys == 1
            heads = set(MigrationContext.configure(conn).get_current_heads())
        assert heads == set(ScriptDirectory.from_config(alembic_config(engine)).get_heads())
    finally:
        engine.dispose()


def test_sqlite_reads_the_version_and_applies_every_migration_under_one_write_lock(tmp_path: Path) -> None:
    # Between two transactions another daemon could read the half-done version and apply a step a second time.
    engine = make_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda _c, _cur, sql, *_: statements.append(sql.strip()))
    event.listen(engine, "commit", lambda _conn: statements.append("COMMIT"))
    try:
        migrate(engine)
    finally:
        engine.dispose()
    assert statements.count("COMMIT") == 1, [s for s in statements if s in ("COMMIT", "BEGIN IMMEDIATE")]
    begin = statements.index("BEGIN IMMEDIATE")
    first_version_read = next(i for i, s in enumerate(statements) if "alembic_version" in s)
    assert begin < first_version_read < statements.index("COMMIT")
