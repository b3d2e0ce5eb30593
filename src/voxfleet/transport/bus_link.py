"""The agent's end of a room on the bus: what a RoomSession sends its caller
goes out as the numbered ``room/{id}/down`` stream (transport/stream.py), so a
Redis blip delays captions and audio but loses and duplicates none; requests
to replay caller audio go out unnumbered (they are idempotent and retried)."""

from __future__ import annotations

import contextlib
import time
from typing import Any

from voxfleet.bus.base import Bus, room_down
from voxfleet.bus.messages import encode_control
from voxfleet.errors import VoxfleetError
from voxfleet.pipeline.session import RoomLink
from voxfleet.transport.stream import Outbox


def new_epoch() -> int:
    """Epochs order producers of one stream: microseconds of wall-clock time,
    so a producer that starts later (a new agent after a failover, a caller's
    new socket) has the larger one, whichever process it runs in."""
    return time.time_ns() // 1000


class BusRoomLink(RoomLink):
    def __init__(self, bus: Bus, room_id: str, epoch: int | None = None) -> None:
        self._bus = bus
        self.room_id = room_id
        self.outbox = Outbox(bus, room_down(room_id), epoch or new_epoch())

    async def send_audio(self, pcm: bytes) -> None:
        self.outbox.push_audio(pcm)

    async def send(self, type_: str, **body: Any) -> None:
        self.outbox.push_control(type_, **body)

    def resend(self, epoch: int, after: int) -> None:
        self.outbox.replay(epoch, after)

    async def ask_replay(self, epoch: int, after: int) -> None:
        with contextlib.suppress(VoxfleetError):  # asked again after a second if lost
            await self._bus.publish(
                self.outbox.topic, encode_control("replay", epoch=epoch, after=after)
            )
