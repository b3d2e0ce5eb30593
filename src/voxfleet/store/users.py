"""UserStore: the monitor's users, persisted. Holds names, roles and password
hashes only; hashing and checking passwords is ``roles/accounts.py``'s job."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import exc as sa_exc
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from voxfleet.errors import Conflict, InvalidRequest
from voxfleet.store.db import translate_unavailable
from voxfleet.store.models import UserRow

USER_NAME = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")


class UserRole(StrEnum):
    VIEWER = "viewer"  # reads the monitor: agents, rooms, calls
    ADMIN = "admin"  # also changes things: users


@dataclass(frozen=True, slots=True)
class UserRecord:
    name: str
    role: UserRole
    password_hash: str
    created_at: float
    last_login_at: float | None


def check_user_name(name: str) -> str:
    if not USER_NAME.match(name):
        raise InvalidRequest(
            f"name: {name[:70]!r} is not a user name (1-64 letters, digits or . _ @ -)",
            field="name",
        )
    return name


class UserStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def count(self) -> int:
        async with self._transaction() as session:
            return int(await session.scalar(select(func.count()).select_from(UserRow)) or 0)

    async def add(self, name: str, password_hash: str, role: UserRole, at: float) -> UserRecord:
        row = UserRow(
            name=check_user_name(name),
            password_hash=password_hash,
            role=role.value,
            created_at=datetime.fromtimestamp(at, UTC),
        )
        try:
            async with self._transaction() as session:
                session.add(row)
        except sa_exc.IntegrityError as e:
            raise Conflict(f"name: a user named {name!r} already exists", field="name") from e
        return _to_record(row)

    async def get(self, name: str) -> UserRecord | None:
        async with self._transaction() as session:
            row = await session.get(UserRow, name)
            return None if row is None else _to_record(row)

    async def list(self) -> list[UserRecord]:
        async with self._transaction() as session:
            rows = (await session.scalars(select(UserRow).order_by(UserRow.name))).all()
            return [_to_record(row) for row in rows]

    async def set_password(self, name: str, password_hash: str) -> bool:
        """False when there is no such user."""
        return await self._update(name, password_hash=password_hash)

    async def signed_in(self, name: str, at: float) -> None:
        await self._update(name, last_login_at=datetime.fromtimestamp(at, UTC))

    async def _update(self, name: str, **values: object) -> bool:
        statement = update(UserRow).where(UserRow.name == name).values(**values)
        async with self._transaction() as session:
            result = await (await session.connection()).execute(statement)
        return bool(result.rowcount)

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncSession]:
        with translate_unavailable():
            async with self._sessions.begin() as session:
                yield session


def _epoch(value: datetime) -> float:
    # SQLite hands back naive datetimes; they were written in UTC.
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


def _to_record(row: UserRow) -> UserRecord:
    return UserRecord(
        name=row.name,
        role=UserRole(row.role),
        password_hash=row.password_hash,
        created_at=_epoch(row.created_at),
        last_login_at=None if row.last_login_at is None else _epoch(row.last_login_at),
    )
