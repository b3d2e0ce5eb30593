"""What the live view shows: live rooms (with their profile, start, the
caller's last words and failovers so far), agents and the scaling signal, as
one snapshot read from Redis and the store; and the changes between two
snapshots, as the message the dashboards apply."""

from __future__ import annotations

import time

from pydantic import BaseModel

from voxfleet.dispatch.base import AgentInfo
from voxfleet.dispatch.scaling import ScalingSignal, scaling_signal
from voxfleet.errors import Unavailable
from voxfleet.observability.logging import get_logger
from voxfleet.roles.backends import Backends
from voxfleet.settings import Settings
from voxfleet.store import CallStore
from voxfleet.store.history import CallHistory

log = get_logger(__name__)


class LiveRoom(BaseModel):
    room_id: str
    agent_id: str | None
    state: str = "queued"  # queued (no agent holds it) or served
    profile: str | None = None
    started_at: float | None = None  # epoch seconds; the page counts the duration
    last_utterance: str | None = None  # the caller's last stored words
    failovers: int = 0  # rooms taken over after their agent died, so far


class Snapshot(BaseModel):
    rooms: dict[str, LiveRoom]
    agents: dict[str, AgentInfo]
    scaling: ScalingSignal


class RoomDetails:
    """Profile and start time of each live room, read from the store once per
    room (they never change while it lives); the caller's last words and the
    failovers so far, read for all live rooms at once on each poll."""

    def __init__(self, store: CallStore | None, history: CallHistory | None = None) -> None:
        self._store = store
        self._history = history
        self._known: dict[str, tuple[str | None, float | None]] = {}

    async def facts(self, room_ids: list[str]) -> dict[str, tuple[str | None, int]]:
        if self._history is None:
            return {}
        try:
            return await self._history.live_facts(room_ids)
        except Unavailable as e:  # the store is restarting: the rest of the view goes on
            log.warning("live view: room facts unavailable", error=str(e))
            return {}

    async def room(self, room_id: str, agent_id: str) -> LiveRoom:
        if room_id not in self._known:
            call = await self._store.get_call(room_id) if self._store is not None else None
            self._known[room_id] = (
                (call.profile, call.started_at or call.created_at) if call else (None, None)
            )
        profile, started = self._known[room_id]
        return LiveRoom(
            room_id=room_id,
            agent_id=agent_id or None,
            state="served" if agent_id else "queued",
            profile=profile,
            started_at=started,
        )

    def forget_all_but(self, live: set[str]) -> None:
        self._known = {k: v for k, v in self._known.items() if k in live}


class SnapshotReader:
    """Reads snapshots for one monitor process (its hub polls it)."""

    def __init__(self, backends: Backends, settings: Settings, details: RoomDetails) -> None:
        self._b = backends
        self._settings = settings
        self._details = details

    async def __call__(self) -> Snapshot:
        b, details = self._b, self._details
        served = await b.directory.rooms()
        details.forget_all_but(set(served))
        rooms = {r: await details.room(r, a) for r, a in sorted(served.items())}
        for room_id, (words, failovers) in (await details.facts(list(rooms))).items():
            room = rooms[room_id]
            room.last_utterance, room.failovers = words, failovers
        found = sorted(await b.registry.agents(), key=lambda a: a.agent_id)
        agents = {a.agent_id: a for a in found}
        scaling = await scaling_signal(b.registry, b.directory, b.queue, self._settings)
        return Snapshot(rooms=rooms, agents=agents, scaling=scaling)


def changes(before: Snapshot, after: Snapshot) -> dict[str, object] | None:
    """What changed from ``before`` to ``after``, as one message; None if nothing."""
    out: dict[str, object] = {}
    for kind in ("rooms", "agents"):
        old: dict[str, BaseModel] = getattr(before, kind)
        new: dict[str, BaseModel] = getattr(after, kind)
        upsert = [v.model_dump(mode="json") for k, v in new.items() if old.get(k) != v]
        removed = sorted(set(old) - set(new))
        if upsert or removed:
            out[kind] = {"upsert": upsert, "remove": removed}
    if before.scaling != after.scaling:
        out["scaling"] = after.scaling.model_dump(mode="json")
    if not out:
        return None
    return {"type": "changes", "at": time.time(), **out}


def full(snap: Snapshot) -> dict[str, object]:
    return {
        "type": "snapshot",
        "at": time.time(),
        "rooms": [r.model_dump(mode="json") for r in snap.rooms.values()],
        "agents": [a.model_dump(mode="json") for a in snap.agents.values()],
        "scaling": snap.scaling.model_dump(mode="json"),
    }
