"""What the monitor page may send on its live socket, and the live captions
of the one call it watches.

``{"type": "watch", "call_id": ...}`` subscribes the socket to the call's down
topic (what its agent says to the caller), on whichever replica the socket
is: the bus is the same Redis for all. Captions go to the page as
``{"type": "caption", "call_id", "role", "text", "final", "seq"}``; later
texts of the same role and ``seq`` replace earlier ones. ``call_id`` null
stops watching; ``{"type": "ping"}`` gets ``{"type": "pong"}``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from voxfleet.aio import TaskSet, cancel_and_wait
from voxfleet.bus.base import Bus, Subscription, room_down
from voxfleet.domain.calls import is_call_id
from voxfleet.errors import MalformedMessage
from voxfleet.messages.client import Transcript
from voxfleet.messages.room import decode_down

Send = Callable[[dict[str, object]], Awaitable[None]]


class Ping(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["ping"]


class Watch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["watch"]
    call_id: str | None = Field(max_length=64)


PageFrame = Annotated[Ping | Watch, Field(discriminator="type")]
_FRAME: TypeAdapter[PageFrame] = TypeAdapter(PageFrame)


def parse_frame(text: str | None) -> Ping | Watch | str:
    """The frame, or what is wrong with it."""
    if text is None:
        return "frame: expected JSON text, got binary"
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return "frame: not valid JSON"
    if not isinstance(data, dict):
        return "frame: expected a JSON object"
    try:
        frame = _FRAME.validate_python(data)
    except ValidationError as e:
        first = e.errors()[0]
        loc = [str(p) for p in first["loc"] if str(p) not in ("ping", "watch")]
        field = ".".join(loc) or "type"
        if first["type"] in ("union_tag_invalid", "union_tag_not_found"):
            return "type: expected 'ping' or 'watch'"
        return f"{field}: {first['msg']}"
    if isinstance(frame, Watch) and frame.call_id is not None and not is_call_id(frame.call_id):
        return "call_id: not a call id"
    return frame


class CaptionWatch:
    """The captions of the one call a live socket watches."""

    def __init__(self, bus: Bus, send: Send) -> None:
        self._bus = bus
        self._send = send
        self._tasks = TaskSet("live-watch")
        self._current: asyncio.Task[None] | None = None

    async def watch(self, call_id: str | None) -> None:
        await cancel_and_wait(self._current)
        self._current = None
        if call_id is not None:
            subscription = await self._bus.subscribe(room_down(call_id))
            self._current = self._tasks.spawn(self._forward(subscription, call_id), "captions")
        await self._send({"type": "watching", "call_id": call_id})

    async def _forward(self, subscription: Subscription, call_id: str) -> None:
        async with subscription:
            async for raw in subscription:
                try:
                    message = decode_down(raw).message
                except MalformedMessage:
                    continue
                if isinstance(message, Transcript):
                    caption = message.model_dump(mode="json", exclude={"type"})
                    await self._send({"type": "caption", "call_id": call_id, **caption})

    async def close(self) -> None:
        await self._tasks.cancel_all()
