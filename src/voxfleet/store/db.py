"""Engines, sessions and schema migrations for the store.

``create_engine`` turns the configured URL into an async engine set up for its
backend, ``migrate`` brings the schema to the newest revision at start-up, and
``session_factory`` makes the sessions that ``CallStore`` runs its queries in.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry

from voxfleet.errors import ConfigError, StoreUnavailable

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
SQLITE_BUSY_TIMEOUT_MS = 5000
# Any constant does, as long as every process that migrates uses the same one.
PG_MIGRATION_LOCK_KEY = int.from_bytes(b"voxfleet", "big")
SUPPORTED_DRIVERS = ("sqlite+aiosqlite", "postgresql+asyncpg")
# PostgreSQL errors that mean "not now" rather than "wrong", as during a failover:
# connection exceptions (08), too many connections (53), the server shutting down
# or starting up (57P). asyncpg's are not OperationalError, so they are listed here.
UNAVAILABLE_SQLSTATES = ("08", "53", "57P")


def create_engine(url: str) -> AsyncEngine:
    """An async engine for ``url``: ``sqlite+aiosqlite`` or ``postgresql+asyncpg``."""
    try:
        parsed = make_url(url)
    except sa_exc.ArgumentError:
        # `from None`: the parse error quotes the URL, and the URL may hold a password.
        raise ConfigError("database_url: not a valid database URL") from None
    if parsed.drivername == "sqlite+aiosqlite":
        return _sqlite_engine(parsed)
    if parsed.drivername == "postgresql+asyncpg":
        # A pooled connection can outlive a database restart or failover; checking
        # it out pings first, so callers do not get the dead socket.
        return create_async_engine(parsed, pool_pre_ping=True)
    raise ConfigError(
        f"database_url: unsupported driver {parsed.drivername!r}; "
        f"use one of {', '.join(SUPPORTED_DRIVERS)}"
    )


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # Rows are turned into domain objects before their session closes; not
    # expiring them on commit keeps a stray attribute access from doing hidden I/O.
    return async_sessionmaker(engine, expire_on_commit=False)


async def migrate(engine: AsyncEngine) -> None:
    """Upgrade the schema to the newest revision; a no-op when it is already there."""
    with translate_unavailable():
        async with engine.begin() as connection:
            await connection.run_sync(_upgrade_to_head)


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic configuration for the packaged migrations, without an alembic.ini.

    With ``connection``, the migration environment runs on that connection.
    """
    config = Config()
    # The value goes through configparser interpolation, where "%" is special.
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@contextmanager
def translate_unavailable() -> Iterator[None]:
    """Re-raise "the database cannot be reached" errors as ``StoreUnavailable``.

    Everything else (a constraint violated, a bad query) propagates unchanged.
    """
    try:
        yield
    except (sa_exc.OperationalError, sa_exc.TimeoutError, OSError) as e:
        raise StoreUnavailable("the database is unavailable") from e
    except sa_exc.DBAPIError as e:
        if e.connection_invalidated:
            raise StoreUnavailable("the database connection was lost") from e
        sqlstate = getattr(e.orig, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate.startswith(UNAVAILABLE_SQLSTATES):
            raise StoreUnavailable("the database is not accepting work now") from e
        raise


def _upgrade_to_head(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        # Several replicas may start at once; the lock (released at commit) makes
        # them migrate one after the other instead of racing on the same DDL.
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({PG_MIGRATION_LOCK_KEY})")
    command.upgrade(alembic_config(connection), "head")


def _sqlite_engine(url: URL) -> AsyncEngine:
    database = url.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        directory = Path(database).parent
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ConfigError(
                f"database_url: cannot create the directory {str(directory)!r}: {e.strerror}"
            ) from e
    engine = create_async_engine(url)
    event.listen(engine.sync_engine, "connect", _on_sqlite_connect)
    event.listen(engine.sync_engine, "begin", _on_sqlite_begin)
    return engine


def _on_sqlite_connect(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    try:
        # WAL lets readers go on while one connection writes; foreign keys (and so
        # ON DELETE CASCADE) are off in SQLite unless asked for on each connection;
        # the busy timeout makes a second writer wait instead of failing at once.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    finally:
        cursor.close()
    # The sqlite3 driver does not BEGIN before DDL, so a migration that failed half
    # way would stay half applied. Turn its transaction handling off and emit BEGIN
    # ourselves (see _on_sqlite_begin), as the SQLAlchemy SQLite docs recommend.
    dbapi_connection.isolation_level = None


def _on_sqlite_begin(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN")
