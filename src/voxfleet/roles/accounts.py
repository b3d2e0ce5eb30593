"""The monitor's accounts: passwords hashed with argon2id (``argon2-cffi``'s
PasswordHasher, its default parameters), checked off the event loop, and the
first admin created from a secret when the store has no user yet."""

from __future__ import annotations

import asyncio
import time

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from voxfleet.errors import InvalidRequest, StoreUnavailable
from voxfleet.observability.logging import get_logger
from voxfleet.settings import Settings
from voxfleet.settings_monitor import MONITOR_PASSWORD_MIN_LENGTH
from voxfleet.store.users import UserRecord, UserRole, UserStore

log = get_logger(__name__)
MAX_PASSWORD_CHARS = 1024  # hashing a megabyte is work an attacker should not get for free


def check_password(password: str) -> str:
    if len(password) < MONITOR_PASSWORD_MIN_LENGTH:
        raise InvalidRequest(
            f"password: must be at least {MONITOR_PASSWORD_MIN_LENGTH} characters",
            field="password",
        )
    if len(password) > MAX_PASSWORD_CHARS:
        raise InvalidRequest(
            f"password: must be at most {MAX_PASSWORD_CHARS} characters", field="password"
        )
    return password


class Accounts:
    def __init__(self, users: UserStore) -> None:
        self.users = users
        self.hasher = PasswordHasher()
        # Unknown names are checked against this, so they take as long as known ones.
        self._decoy = self.hasher.hash("not a password of anyone")

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self.hasher.hash, check_password(password))

    async def add(self, name: str, password: str, role: UserRole) -> UserRecord:
        return await self.users.add(name, await self.hash(password), role, time.time())

    async def set_password(self, name: str, password: str) -> bool:
        return await self.users.set_password(name, await self.hash(password))

    async def authenticate(self, name: str, password: str) -> UserRecord | None:
        """The user, when ``password`` is theirs; None otherwise (unknown or wrong)."""
        user = await self.users.get(name) if len(password) <= MAX_PASSWORD_CHARS else None
        ok = await asyncio.to_thread(
            self._verify, user.password_hash if user else self._decoy, password
        )
        if user is None or not ok:
            return None
        if self.hasher.check_needs_rehash(user.password_hash):
            await self.users.set_password(name, await self.hash(password))
        await self.users.signed_in(name, time.time())
        return user

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self.hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    async def ensure_first_admin(self, settings: Settings) -> None:
        """With no user yet: the admin named by ``monitor_admin_user``, with the
        password ``monitor_admin_password``; without that secret, a warning."""
        try:
            if await self.users.count():
                return
        except StoreUnavailable:
            # Not migrated yet, or the database is down: the admin key still
            # opens the monitor, and sign-in answers 503 until the store is back.
            log.warning("monitor users unavailable; is the database migrated (voxfleet migrate)?")
            return
        password = settings.monitor_admin_password
        if password is None:
            log.warning(
                "no monitor users; set VOXFLEET_MONITOR_ADMIN_PASSWORD(_FILE) or run "
                "`voxfleet users add`",
            )
            return
        await self.add(settings.monitor_admin_user, password.get_secret_value(), UserRole.ADMIN)
        log.info("first monitor admin created", user=settings.monitor_admin_user)
