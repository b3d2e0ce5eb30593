"""Server-side monitor sessions: the browser's cookie holds only a random id;
the session (user, role, CSRF token, times) stays here, in Redis when the
process has one (every monitor replica sees the same sign-ins), in memory for
`voxfleet up`. A session ends after ``idle`` seconds unused or ``absolute``
seconds after sign-in, whichever comes first.

Hand-written rather than Starlette's SessionMiddleware: that one keeps the
whole session in a signed cookie, so signing out cannot revoke it."""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from voxfleet.errors import DispatchUnavailable
from voxfleet.store.users import UserRole

KEY_PREFIX = "vf:session:"
SESSION_COOKIE = "vf_session"


@dataclass(frozen=True, slots=True)
class Session:
    user: str
    role: UserRole
    csrf: str
    started_at: float
    last_seen: float


class SessionStore(Protocol):
    clock: Callable[[], float]

    async def start(self, user: str, role: UserRole) -> tuple[str, Session]: ...
    async def get(self, session_id: str) -> Session | None: ...
    async def end(self, session_id: str) -> None: ...


class _Lifetimes:
    def __init__(self, idle: float, absolute: float, clock: Callable[[], float]) -> None:
        self.idle = idle
        self.absolute = absolute
        self.clock = clock

    def new(self, user: str, role: UserRole) -> tuple[str, Session]:
        now = self.clock()
        return secrets.token_urlsafe(32), Session(user, role, secrets.token_urlsafe(32), now, now)

    def alive(self, session: Session, now: float) -> bool:
        return now - session.last_seen < self.idle and now - session.started_at < self.absolute

    def ttl(self, session: Session, now: float) -> int:
        """Seconds until ``session`` expires (at least 1), for Redis' EXPIRE."""
        left = min(self.idle, session.started_at + self.absolute - now)
        return max(1, int(left + 0.999))


class MemorySessions(_Lifetimes):
    def __init__(
        self, idle: float, absolute: float, clock: Callable[[], float] = time.time
    ) -> None:
        super().__init__(idle, absolute, clock)
        self._sessions: dict[str, Session] = {}

    async def start(self, user: str, role: UserRole) -> tuple[str, Session]:
        now = self.clock()
        # Expired sessions go when a new one starts, so the dict stays small.
        self._sessions = {k: s for k, s in self._sessions.items() if self.alive(s, now)}
        session_id, session = self.new(user, role)
        self._sessions[session_id] = session
        return session_id, session

    async def get(self, session_id: str) -> Session | None:
        session = self._sessions.get(session_id)
        now = self.clock()
        if session is None or not self.alive(session, now):
            self._sessions.pop(session_id, None)
            return None
        session = self._sessions[session_id] = replace(session, last_seen=now)
        return session

    async def end(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)


class RedisSessions(_Lifetimes):
    """Keyed by a hash of the id: whoever reads Redis cannot sign in with its keys."""

    def __init__(
        self, redis: Redis, idle: float, absolute: float, clock: Callable[[], float] = time.time
    ) -> None:
        super().__init__(idle, absolute, clock)
        self._redis = redis

    @staticmethod
    def _key(session_id: str) -> str:
        return KEY_PREFIX + hashlib.sha256(session_id.encode()).hexdigest()

    async def _put(self, session_id: str, session: Session) -> None:
        body = json.dumps(asdict(session))
        with _unavailable():
            await self._redis.set(self._key(session_id), body, ex=self.ttl(session, self.clock()))

    async def start(self, user: str, role: UserRole) -> tuple[str, Session]:
        session_id, session = self.new(user, role)
        await self._put(session_id, session)
        return session_id, session

    async def get(self, session_id: str) -> Session | None:
        with _unavailable():
            raw = await self._redis.get(self._key(session_id))
        if raw is None:
            return None
        data = json.loads(raw)
        session = Session(
            str(data["user"]),
            UserRole(data["role"]),
            str(data["csrf"]),
            float(data["started_at"]),
            float(data["last_seen"]),
        )
        now = self.clock()
        if not self.alive(session, now):
            await self.end(session_id)
            return None
        session = replace(session, last_seen=now)
        await self._put(session_id, session)
        return session

    async def end(self, session_id: str) -> None:
        with _unavailable():
            await self._redis.delete(self._key(session_id))


@contextmanager
def _unavailable() -> Iterator[None]:
    """Redis errors as a 503 that says what is missing, not a 500."""
    try:
        yield
    except (RedisError, OSError) as e:
        raise DispatchUnavailable("sessions: Redis is unavailable; try again shortly") from e


def build_sessions(idle: float, absolute: float, redis: Redis | None) -> SessionStore:
    if redis is None:
        return MemorySessions(idle, absolute)
    return RedisSessions(redis, idle, absolute)
