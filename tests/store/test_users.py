"""The monitor's users in the store, on SQLite and PostgreSQL: added once per
name, read back with their role, password changed, sign-in time kept; and the
first admin, created from its secret while no user exists."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine

from voxfleet.errors import Conflict, InvalidRequest, StoreUnavailable
from voxfleet.roles.accounts import Accounts
from voxfleet.settings import Settings
from voxfleet.store import create_engine, migrate, session_factory
from voxfleet.store.models import UserRow
from voxfleet.store.users import UserRole, UserStore

pytestmark = pytest.mark.integration


async def users_of(engine: AsyncEngine) -> UserStore:
    await migrate(engine)
    async with engine.begin() as connection:
        await connection.execute(delete(UserRow))
    return UserStore(session_factory(engine))


async def test_users_are_added_once_listed_and_updated(engine: AsyncEngine) -> None:
    users = await users_of(engine)
    assert await users.count() == 0
    added = await users.add("ops@example", "hash-1", UserRole.ADMIN, 1_000.0)
    assert (added.name, added.role, added.created_at) == ("ops@example", UserRole.ADMIN, 1_000.0)
    await users.add("viewer.1", "hash-2", UserRole.VIEWER, 1_001.0)
    with pytest.raises(Conflict, match=r"'viewer\.1' already exists"):
        await users.add("viewer.1", "hash-3", UserRole.ADMIN, 1_002.0)
    assert [(u.name, u.role) for u in await users.list()] == [
        ("ops@example", UserRole.ADMIN),
        ("viewer.1", UserRole.VIEWER),
    ]
    assert await users.set_password("viewer.1", "hash-4")
    assert not await users.set_password("nobody", "hash-5")
    await users.signed_in("viewer.1", 2_000.0)
    got = await users.get("viewer.1")
    assert got is not None and got.password_hash == "hash-4" and got.last_login_at == 2_000.0
    assert await users.get("nobody") is None
    assert await users.count() == 2


@pytest.mark.parametrize("name", ["", "has space", "x" * 65, "semi;colon"])
async def test_a_bad_user_name_is_refused_naming_the_field(engine: AsyncEngine, name: str) -> None:
    users = await users_of(engine)
    with pytest.raises(InvalidRequest, match=r"^name: ") as caught:
        await users.add(name, "hash", UserRole.VIEWER, 0.0)
    assert caught.value.field == "name"


async def test_the_first_admin_comes_from_the_secret_once(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'users.db'}")
    try:
        accounts = Accounts(UserStore(session_factory(engine)))
        settings = Settings(
            data_dir=tmp_path,
            monitor_admin_user="root",
            monitor_admin_password="first password!",
            _env_file=None,  # type: ignore[call-arg]
        )
        # Not migrated: no users table. The monitor starts anyway (admin key only).
        await accounts.ensure_first_admin(settings)
        with pytest.raises(StoreUnavailable):
            await accounts.users.count()
        await migrate(engine)
        await accounts.ensure_first_admin(settings)
        assert await accounts.authenticate("root", "first password!") is not None
        changed = settings.model_copy(update={"monitor_admin_password": SecretStr("second pw!!!")})
        await accounts.ensure_first_admin(changed)  # a user exists: the secret is not read
        assert [(u.name, u.role) for u in await accounts.users.list()] == [("root", UserRole.ADMIN)]
        assert await accounts.authenticate("root", "second pw!!!") is None
        assert await accounts.authenticate("nobody", "first password!") is None
    finally:
        await engine.dispose()
