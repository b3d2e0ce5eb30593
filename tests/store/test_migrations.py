"""The migrations build exactly the schema the models declare, on SQLite and on
PostgreSQL; and the engines they run on are set up as the store needs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from voxfleet.errors import ConfigError
from voxfleet.store import CallStore, create_engine, migrate, session_factory
from voxfleet.store.db import alembic_config
from voxfleet.store.models import Base

pytestmark = pytest.mark.integration


def schema_diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def table_names(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


def downgrade_to_base(connection: Connection) -> None:
    command.downgrade(alembic_config(connection), "base")


async def test_migrated_schema_matches_the_models(engine: AsyncEngine) -> None:
    await migrate(engine)

    async with engine.connect() as connection:
        assert await connection.run_sync(schema_diff) == []


async def test_migrating_again_is_a_no_op_at_head(engine: AsyncEngine) -> None:
    await migrate(engine)
    await migrate(engine)

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    async with engine.connect() as connection:
        assert await connection.run_sync(current_revision) == head == "0004"


async def test_downgrade_to_base_and_upgrade_again(engine: AsyncEngine) -> None:
    await migrate(engine)

    async with engine.begin() as connection:
        await connection.run_sync(downgrade_to_base)
    async with engine.connect() as connection:
        assert await connection.run_sync(table_names) == {"alembic_version"}
        # The comparison does see a schema that differs from the models.
        missing = {(diff[0], diff[1].name) for diff in await connection.run_sync(schema_diff)}
        assert missing == {
            ("add_table", "calls"),
            ("add_table", "turns"),
            ("add_table", "users"),
            ("add_table", "call_events"),
            ("add_index", "ix_calls_created_at"),
            ("add_index", "ix_call_events_call_id_at"),
        }

    await migrate(engine)
    async with engine.connect() as connection:
        assert await connection.run_sync(schema_diff) == []


async def test_turns_written_before_tools_were_recorded_read_back_with_none(
    engine: AsyncEngine,
) -> None:
    async with engine.begin() as connection:
        await connection.run_sync(lambda c: command.upgrade(alembic_config(c), "0001"))
        await connection.execute(
            text(
                "INSERT INTO calls (id, profile, status, created_at) "
                "VALUES ('c_0123456789abcdef', 'default', 'ended', CURRENT_TIMESTAMP)"
            )
        )
        await connection.execute(
            text(
                "INSERT INTO turns (call_id, seq, speaker, text, interrupted, started_at, ended_at)"
                " VALUES ('c_0123456789abcdef', 0, 'agent', 'Hi.', false, "
                "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )
    await migrate(engine)
    call = await CallStore(session_factory(engine)).get_call("c_0123456789abcdef")
    assert call is not None and [(t.text, t.tools) for t in call.turns] == [("Hi.", [])]


async def test_call_events_come_and_go_with_0004(engine: AsyncEngine) -> None:
    await migrate(engine)
    async with engine.begin() as connection:
        await connection.run_sync(lambda c: command.downgrade(alembic_config(c), "0003"))
        assert "call_events" not in await connection.run_sync(table_names)
        assert "calls" in await connection.run_sync(table_names)
    await migrate(engine)
    async with engine.connect() as connection:
        assert "call_events" in await connection.run_sync(table_names)
        assert await connection.run_sync(schema_diff) == []


async def test_ddl_rolls_back_with_its_transaction(engine: AsyncEngine) -> None:
    # Migrations rely on it: a revision that fails half way must leave nothing behind.
    async with engine.connect() as connection:
        await connection.execute(text("CREATE TABLE scratch (x INTEGER)"))
        await connection.rollback()
        assert "scratch" not in await connection.run_sync(table_names)


async def test_sqlite_connections_are_set_up(tmp_path: Path) -> None:
    path = tmp_path / "missing" / "dir" / "voxfleet.db"
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    try:
        async with engine.connect() as connection:
            pragmas = [
                (await connection.execute(text(f"PRAGMA {name}"))).scalar_one()
                for name in ("journal_mode", "foreign_keys", "busy_timeout")
            ]
    finally:
        await engine.dispose()

    assert pragmas == ["wal", 1, 5000]
    assert path.exists()


@pytest.mark.parametrize(
    "url",
    [
        "mysql+aiomysql://root:hunter2@db/voxfleet",
        "postgresql://postgres:hunter2@db/voxfleet",
        "sqlite:///voxfleet.db",
    ],
)
def test_create_engine_rejects_unsupported_drivers(url: str) -> None:
    with pytest.raises(ConfigError, match="database_url: unsupported driver") as raised:
        create_engine(url)

    assert "hunter2" not in str(raised.value)


def test_create_engine_rejects_a_malformed_url_without_echoing_it() -> None:
    with pytest.raises(ConfigError, match="database_url") as raised:
        create_engine("not a url, password hunter2")

    assert "hunter2" not in str(raised.value)
    assert raised.value.__cause__ is None
