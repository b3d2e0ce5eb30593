"""Which link a room's session gets, by ``VOXFLEET_TRANSPORT``: the bus link to
the built-in WebSocket edge, or the call's LiveKit room. Either is the
session's InboundLink and OutboundLink; the agent worker enters it, attaches,
and runs the session on it, whichever it is."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from voxfleet.bus.base import Bus
from voxfleet.pipeline.ports import StreamPosition
from voxfleet.settings import Settings
from voxfleet.transport.bus_link import BusRoomLink

if TYPE_CHECKING:
    from voxfleet.transport.livekit.link import LiveKitRoomLink


class LinkSettings(Protocol):
    """What a link is made with, besides its room (the agent's config)."""

    @property
    def caller_gone_after(self) -> float: ...

    @property
    def livekit(self) -> Settings | None:
        """The settings to join LiveKit rooms with; None: rooms run on the bus."""


def room_link(
    bus: Bus,
    room_id: str,
    start: StreamPosition | None,
    agent_id: str,
    sample_rate: int,
    config: LinkSettings,
    resumed: bool = False,
) -> BusRoomLink | LiveKitRoomLink:
    """``start``: where the room has heard the caller up to (the bus link asks
    its edge for what came after; a LiveKit room keeps nothing to ask for).
    ``resumed``: the room had an agent before (its caller was on the call)."""
    if config.livekit is None:
        return BusRoomLink(bus, room_id, start, config.caller_gone_after)
    # Imported here: only LiveKit agents load the SDK (and its native library).
    from voxfleet.transport.livekit.link import livekit_link

    return livekit_link(config.livekit, room_id, agent_id, sample_rate, resumed)
