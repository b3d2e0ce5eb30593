"""The agent's end of a room when media runs through LiveKit: the RoomSession's
inbound and outbound link, as BusRoomLink is for the WebSocket edge.

The agent joins the LiveKit room named after the call as ``agent-<agent id>``,
subscribes to the ``caller``'s audio only (the old agent of a handover is in
the room too), and publishes one audio track and data packets. This module is
the thin part that talks to the SDK; what the link decides lives in
``CallerFeed`` (caller.py) and ``AgentVoice`` (voice.py), which the tests drive
with real SDK frames and no server."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from types import TracebackType

from livekit import rtc
from livekit.rtc.participant import PublishDataError, PublishTrackError

from voxfleet.aio import TaskSet
from voxfleet.audio import INPUT_RATE
from voxfleet.errors import ConfigError, Unavailable
from voxfleet.messages.client import AgentMessage
from voxfleet.messages.room import Attached
from voxfleet.observability.logging import get_logger
from voxfleet.pipeline.ports import CallerEvent, InboundLink, OutboundLink
from voxfleet.settings import Settings
from voxfleet.transport.livekit.caller import CALLER, TOPIC, CallerFeed, CallerTiming
from voxfleet.transport.livekit.frames import FRAME_MS
from voxfleet.transport.livekit.grants import agent_token
from voxfleet.transport.livekit.voice import AgentVoice, Publish

log = get_logger(__name__)
SOURCE_QUEUE_MS = 500  # the Playout keeps ~120 ms ahead; room for a slow loop
FLUSH_ON_LEAVE_S = 0.5  # what the session said last gets this long to play


class LiveKitRoomLink(InboundLink, OutboundLink):
    """Use as ``async with``: it joins the room and publishes the agent's track.
    ``publish`` sends a data packet; by default through the joined room.
    ``resumed``: the room had an agent before (failover, handover), so its
    caller was on the call: absent, it has the resume window, not the join's."""

    def __init__(
        self,
        room_id: str,
        url: str,
        token: str,
        timing: CallerTiming,
        source: rtc.AudioSource,
        publish: Publish | None = None,
        resumed: bool = False,
    ) -> None:
        self.room_id = room_id
        self._url = url
        self._token = token
        self._source = source
        self.room = rtc.Room()
        self.caller = CallerFeed(timing, seen=resumed)
        until = time.monotonic() + (timing.resume_window if resumed else timing.join_window)
        self.voice = AgentVoice(source, publish or self._publish, until)
        self._tasks = TaskSet(f"livekit:{room_id}")
        self._reader: asyncio.Task[None] | None = None
        self._reader_sid = ""

    async def __aenter__(self) -> LiveKitRoomLink:
        self._listen(self.room)
        try:
            await self.room.connect(self._url, self._token, rtc.RoomOptions(auto_subscribe=False))
            track = rtc.LocalAudioTrack.create_audio_track("agent", self._source)
            options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
            await self.room.local_participant.publish_track(track, options)
        except (rtc.ConnectError, PublishTrackError) as e:
            await self._close()
            raise Unavailable(
                f"LiveKit room not joined: {e.message}", code="livekit_unavailable"
            ) from e
        except BaseException:
            await self._close()
            raise
        for participant in self.room.remote_participants.values():
            self.caller.joined(participant.identity)
            for publication in participant.track_publications.values():
                self._published(publication, participant)
        log.info("livekit room joined", room=self.room_id)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(FLUSH_ON_LEAVE_S):
                    await self._source.wait_for_playout()
        await self._close()

    async def _close(self) -> None:
        await self._tasks.cancel_all()
        await self.room.disconnect()
        await self._source.aclose()

    # -- out ----------------------------------------------------------------------

    async def attach(self, attached: Attached) -> None:
        """Nothing to announce: the caller sees the agent join the room. (The
        bus link tells its edge here, which then lets the caller's audio in.)"""

    async def audio(self, pcm: bytes) -> None:
        await self.voice.audio(pcm)

    async def send(self, message: AgentMessage) -> None:
        await self.voice.send(message)

    async def _publish(self, payload: bytes) -> None:
        if not self.room.isconnected():
            raise PublishDataError("not connected to the room")
        await self.room.local_participant.publish_data(payload, reliable=True, topic=TOPIC)

    # -- in -----------------------------------------------------------------------

    def hold(self) -> None:
        self.caller.hold()

    def release(self) -> None:
        self.caller.release()

    def events(self) -> AsyncIterator[CallerEvent]:
        return self.caller.events()

    # -- the SDK's events ---------------------------------------------------------

    def _listen(self, room: rtc.Room) -> None:
        caller, voice = self.caller, self.voice
        room.on("participant_connected", lambda p: caller.joined(p.identity))
        room.on(
            "participant_disconnected",
            lambda p: caller.left(
                p.identity, p.disconnect_reason == rtc.DisconnectReason.CLIENT_INITIATED
            ),
        )
        room.on("track_published", self._published)
        room.on("track_subscribed", self._subscribed)
        room.on("track_unsubscribed", self._unsubscribed)
        room.on("local_track_subscribed", lambda _track: voice.listening())
        room.on("data_received", self._data)
        room.on("reconnecting", caller.reconnecting)
        room.on("reconnected", caller.reconnected)
        room.on("disconnected", caller.disconnected)

    def _published(self, publication: rtc.TrackPublication, participant: rtc.Participant) -> None:
        """The caller's microphone, whenever it is published (at join, later,
        after the caller came back): subscribe. Nothing else is taken."""
        if (
            participant.identity == CALLER
            and publication.kind == rtc.TrackKind.KIND_AUDIO
            and isinstance(publication, rtc.RemoteTrackPublication)
        ):
            publication.set_subscribed(True)

    def _subscribed(
        self,
        track: rtc.Track,
        publication: rtc.RemoteTrackPublication,
        participant: rtc.RemoteParticipant,
    ) -> None:
        if participant.identity != CALLER or not isinstance(track, rtc.RemoteAudioTrack):
            return
        if self._reader is not None and not self._reader.done() and track.sid == self._reader_sid:
            return  # seen at join and again as an event
        if self._reader is not None:
            self._reader.cancel()  # one caller track at a time: the newest
        self.caller.new_track()
        self._reader = self._tasks.spawn(self._read(track), "caller-audio")
        self._reader_sid = track.sid

    def _unsubscribed(
        self,
        track: rtc.Track,
        publication: rtc.RemoteTrackPublication,
        participant: rtc.RemoteParticipant,
    ) -> None:
        if self._reader is not None and track.sid == self._reader_sid:
            self._reader.cancel()
            self._reader = None

    async def _read(self, track: rtc.RemoteAudioTrack) -> None:
        # The SDK resamples and downmixes natively when asked for 16 kHz mono in
        # 20 ms frames; CallerFeed still takes any shape (frames.py).
        stream = rtc.AudioStream.from_track(
            track=track, sample_rate=INPUT_RATE, num_channels=1, frame_size_ms=FRAME_MS
        )
        try:
            async for event in stream:
                self.caller.audio(event.frame)
        finally:
            await stream.aclose()

    def _data(self, packet: rtc.DataPacket) -> None:
        sender = packet.participant.identity if packet.participant is not None else None
        self.caller.data(packet.data, sender, packet.topic)


def livekit_link(
    settings: Settings, call_id: str, agent_id: str, sample_rate: int, resumed: bool = False
) -> LiveKitRoomLink:
    """The link of one room; ``sample_rate``: the TTS's, which the agent's
    track takes as it is (the SDK encodes to Opus at 48 kHz)."""
    if settings.livekit_url is None:
        raise ConfigError("transport=livekit needs livekit_url")
    timing = CallerTiming(
        resume_window=settings.resume_window_seconds,
        join_window=float(settings.livekit_token_ttl_seconds),
        gone_after=settings.caller_gone_seconds,
    )
    source = rtc.AudioSource(sample_rate, 1, queue_size_ms=SOURCE_QUEUE_MS)
    token = agent_token(settings, call_id, agent_id)
    return LiveKitRoomLink(call_id, settings.livekit_url, token, timing, source, resumed=resumed)
