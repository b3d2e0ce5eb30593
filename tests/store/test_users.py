"""The monitor's users in the store, on SQLite and PostgreSQL: added once per
name, read back with their role, password changed, sign-in time kept."""

from __future__ import annotations

import pytest
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine

from voxfleet.errors import Conflict, InvalidRequest
from voxfleet.store import migrate, session_factory
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
