"""Engine, sessions and Alembic migrations applied at start, with start-up database faults named in one line."""

from __future__ import annotations

import logging
import math
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, Table, event, inspect, text
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, SQLModel, create_engine

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# Every fairdesk daemon takes this PostgreSQL advisory lock to migrate; the value only has to be fixed and ours.
MIGRATION_LOCK_KEY = 0x66616972_6D696772  # "fairmigr"
PG_CONNECT_TIMEOUT = 10  # seconds; libpq waits forever by default on a host that drops packets
RETRY_EVERY = 1.0  # seconds between connection attempts while waiting for the database
LOG_EVERY = 5.0  # seconds between countdown lines, so a long wait does not flood the log
# libpq messages after which waiting cannot help: the server answered, and said no.
PERMANENT = ("authentication failed", "no pg_hba.conf entry", "does not exist", "role ")

SessionFactory = Callable[[], Session]


class DatabaseStartupError(Exception):
    """The database cannot be used at start; the message is one line naming the problem and the fix."""

    def __init__(self, message: str, *, reason: str = "", retry: bool = False) -> None:
        super().__init__(message)
        self.reason = reason
        self.retry = retry


def make_engine(url: str) -> Engine:
    """An engine for SQLite (the embedded default) or PostgreSQL (psycopg 3)."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if url.startswith("sqlite"):
        path = _sqlite_path(url)
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise DatabaseStartupError(
                    f"cannot create the database folder {path.parent} ({exc.strerror or exc}); "
                    "make it writable for the user running fairdesk, or point `data_dir` elsewhere"
                ) from exc
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        # pysqlite's own transaction handling defers BEGIN; take control so that a claim is atomic.
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
        return engine
    return create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": PG_CONNECT_TIMEOUT})


def missing_sqlite_file(url: str) -> Path | None:
    """The SQLite file ``url`` names if it does not exist yet (commands that only read must not create it)."""
    path = _sqlite_path(url) if url.startswith("sqlite") else None
    return path if path is not None and not path.exists() else None


def schema_state(engine: Engine) -> tuple[tuple[str, ...], tuple[str, ...], frozenset[str]]:
    """(the database's current migration heads, this code's heads, every revision this code knows), read only."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    with connect(engine) as connection:
        try:
            current = MigrationContext.configure(connection).get_current_heads()
        except DBAPIError as exc:
            raise describe(exc, engine) from exc
    script = ScriptDirectory.from_config(alembic_config(engine))
    known = frozenset(rev.revision for rev in script.walk_revisions())
    return tuple(current), tuple(script.get_heads()), known


def _sqlite_path(url: str) -> Path | None:
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def _sqlite_pragmas(dbapi_conn: sqlite3.Connection, _record: object) -> None:
    dbapi_conn.isolation_level = None  # autocommit at the driver; SQLAlchemy's begin event issues BEGIN IMMEDIATE
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def alembic_config(engine: Engine, connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    cfg.attributes["connection"] = connection
    return cfg


def migrate(engine: Engine, *, wait_seconds: float = 0.0) -> None:
    """Bring the schema to the newest migration (safe to call on every start, from several daemons at once).

    PostgreSQL: the upgrade runs under an advisory lock held on Alembic's own connection, so one daemon migrates
    while the others wait and then find the schema at head. SQLite: the whole upgrade is one BEGIN IMMEDIATE
    transaction (see migrations/env.py), which serialises it the same way. A database that cannot be reached is
    retried for ``wait_seconds``; any fault raises DatabaseStartupError.
    """
    with connect(engine, wait_seconds=wait_seconds) as connection:
        try:
            with _migration_lock(connection):
                command.upgrade(alembic_config(engine, connection), "head")
            _check_writable(connection)
        except DBAPIError as exc:
            raise describe(exc, engine) from exc


def connect(
    engine: Engine,
    *,
    wait_seconds: float = 0.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Connection:
    """A connection, retrying an unreachable database for ``wait_seconds`` with a countdown in the log."""
    deadline = clock() + wait_seconds
    next_log = clock()
    while True:
        try:
            return engine.connect()
        except DBAPIError as exc:
            problem = describe(exc, engine, connecting=True, waited=wait_seconds)
            remaining = deadline - clock()
            if not problem.retry or remaining <= 0:
                raise problem from exc
            if clock() >= next_log:
                logger.warning("%s; retrying for %d s more", problem.reason, math.ceil(remaining))
                logger.debug("connection attempt failed", exc_info=True)
                next_log = clock() + LOG_EVERY
            sleep(min(RETRY_EVERY, remaining))


@contextmanager
def _migration_lock(connection: Connection) -> Iterator[None]:
    if connection.dialect.name != "postgresql":
        yield  # SQLite: the migration transaction's BEGIN IMMEDIATE is the lock
        return
    connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
    connection.commit()  # the lock is held by the session, not the transaction; Alembic starts its own
    try:
        yield
    finally:
        try:
            connection.rollback()
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})
            connection.commit()
        except DBAPIError:
            # Closing the session releases the lock; never hand a locked connection back to the pool.
            connection.invalidate()


def _check_writable(connection: Connection) -> None:
    # SQLite opens a file it may not write read-only without a word, and an up-to-date schema needs no write, so
    # without this a write-protected database would start and then fail every poll. Nothing is kept.
    if connection.dialect.name != "sqlite":
        return
    with connection.begin() as probe:
        connection.exec_driver_sql("CREATE TABLE _fairdesk_write_check (x INTEGER)")
        probe.rollback()


def describe(exc: DBAPIError, engine: Engine, *, connecting: bool = False, waited: float = 0.0) -> DatabaseStartupError:
    """Translate a driver error met at start into one line naming the problem and the fix."""
    detail = str(exc.orig).strip() or type(exc.orig).__name__
    if engine.dialect.name == "sqlite":
        return _describe_sqlite(detail, engine)
    url = engine.url
    where = f"{url.host or 'localhost'}:{url.port or 5432}/{url.database or ''}"
    reason = detail.splitlines()[0].rsplit(": ", 1)[-1].strip().rstrip(".")
    reason = reason[:1].lower() + reason[1:]  # libpq's "Connection refused" reads as part of our sentence
    if not connecting:
        return DatabaseStartupError(
            f'database {where}: migrating the schema failed ({reason}); set log_level = "DEBUG" for the full error',
            reason=reason,
        )
    if any(word in detail for word in PERMANENT):
        return DatabaseStartupError(
            f"database {where} refused the connection ({reason}); fix `database_url` (user, password, database "
            "name) or the server's access rules",
            reason=reason,
        )
    after = f" after waiting {waited:g} s" if waited else ""
    return DatabaseStartupError(
        f"database {where} not reachable ({reason}){after}; start PostgreSQL there or fix `database_url` "
        "(`database_wait_seconds` sets how long to wait at start)",
        reason=f"database not reachable ({reason})",
        retry=True,
    )


def _describe_sqlite(detail: str, engine: Engine) -> DatabaseStartupError:
    path = engine.url.database
    if "file is not a database" in detail:
        fix = "it is damaged or not an SQLite file; move it away to start a new database, or restore a backup"
    elif "readonly" in detail or "read-only" in detail:
        fix = "make the file and its folder writable for the user running fairdesk, or point `data_dir` elsewhere"
    elif "unable to open" in detail:
        fix = "check that it is a file in a writable folder, or point `data_dir` elsewhere"
    elif "locked" in detail:
        fix = "another program holds it locked; stop that program or point `data_dir` elsewhere"
    else:
        fix = 'set log_level = "DEBUG" for the full error, or point `data_dir` elsewhere'
    return DatabaseStartupError(f"database file {path}: {detail}; {fix}", reason=detail)


def insert_if_absent(session: Session, row: SQLModel) -> bool:
    """Insert ``row`` unless a row with its key exists; True only for the one caller whose insert won.

    INSERT ... ON CONFLICT DO NOTHING on both dialects: when daemons race, each loser waits for the winner's commit
    and inserts nothing, with no error and no aborted transaction.
    """
    table = inspect(type(row)).local_table
    assert isinstance(table, Table)  # a table=True model maps exactly one table
    insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    values = {column.name: getattr(row, column.name) for column in table.columns}
    # RETURNING, not rowcount: psycopg reports -1 for a single INSERT ... ON CONFLICT here.
    statement = insert(table).values(values).on_conflict_do_nothing().returning(*table.primary_key.columns)
    return session.execute(statement).first() is not None


def session_factory(engine: Engine) -> SessionFactory:
    def factory() -> Session:
        return Session(engine, expire_on_commit=False)

    return factory


@contextmanager
def transaction(factory: SessionFactory) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error."""
    session = factory()
    try:
        with session.begin():
            yield session
    finally:
        session.close()
