"""Fixtures for the store tests: one migrated, empty database per test, on SQLite
and on PostgreSQL.

SQLite gets a file in the test's tmp_path. PostgreSQL gets a database of its own
per test module (``postgres_url`` in tests/conftest.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine

from voxfleet.store import CallStore, create_engine, migrate, session_factory
from voxfleet.store.models import CallRow

BACKENDS = ("sqlite", "postgresql")


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
