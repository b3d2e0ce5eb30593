"""What the agent says in a LiveKit room, as the session's OutboundLink: audio
into the agent's one ``rtc.AudioSource`` (its published track), and each
AgentMessage as a reliable data packet on topic ``voxfleet`` carrying the JSON
a media socket would carry, so one client parser serves both transports."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from livekit import rtc
from livekit.rtc.participant import PublishDataError

from voxfleet.messages.client import AgentMessage, Ended, HangUp, Interrupt
from voxfleet.observability.logging import get_logger
from voxfleet.pipeline.ports import OutboundLink
from voxfleet.transport.livekit.frames import AgentFrames

log = get_logger(__name__)
Publish = Callable[[bytes], Awaitable[None]]


def encode_message(message: AgentMessage) -> bytes:
    """The data packet of ``message``. No edge sits between agent and caller
    here, so the agent does the edge's one translation: ``hang_up`` reaches the
    caller as ``ended`` (agent_ended, or operator_ended), as on the media socket."""
    if isinstance(message, HangUp):
        return Ended(reason=message.reason).to_json().encode()
    return message.to_json().encode()


class AgentVoice(OutboundLink):
    """Nothing is said before someone listens: a LiveKit room can hold the
    agent before the caller (the landing may dispatch at call creation), and a
    greeting into an empty room is lost. So output waits until the caller has
    subscribed to the agent's track (``listening``), or until ``wait_until``
    (the caller's join window: then the link ends the call anyway).

    Pacing is the Playout's (real time plus a small lead); ``capture_frame``
    only waits when the source's queue is full. An ``interrupt`` also drops
    what the source still holds, the part a socket client drops itself."""

    def __init__(self, source: rtc.AudioSource, publish: Publish, wait_until: float) -> None:
        self._source = source
        self._frames = AgentFrames(source.sample_rate)
        self._publish = publish
        self._listening = asyncio.Event()
        self._wait_until = wait_until  # time.monotonic()
        self._faults = 0

    def listening(self) -> None:
        """The caller subscribed to the agent's track."""
        self._listening.set()

    async def audio(self, pcm: bytes) -> None:
        await self._until_listening()
        frame = self._frames.frame(pcm)
        if frame is None:
            return
        try:
            await self._source.capture_frame(frame)
        except Exception as e:  # the SDK raises bare Exception for a failed capture
            self._fault("agent audio frame dropped", e)

    async def send(self, message: AgentMessage) -> None:
        await self._until_listening()
        if isinstance(message, Interrupt):
            self._source.clear_queue()
        try:
            await self._publish(encode_message(message))
        except PublishDataError as e:
            self._fault("agent message dropped", e)

    async def _until_listening(self) -> None:
        if self._listening.is_set():
            return
        remaining = self._wait_until - time.monotonic()
        if remaining > 0:
            try:
                async with asyncio.timeout(remaining):
                    await self._listening.wait()
            except TimeoutError:
                pass

    def _fault(self, what: str, error: Exception) -> None:
        # A connection that is down drops what is said (LiveKit has no replay);
        # logged at the first and then every 50th, not 50 times a second.
        if self._faults % 50 == 0:
            log.warning(what, error=repr(error), count=self._faults + 1)
        self._faults += 1
