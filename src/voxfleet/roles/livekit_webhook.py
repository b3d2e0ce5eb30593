"""``POST /api/livekit/webhook``: LiveKit tells the landing what happens in
its rooms. Only a verified webhook (transport/livekit/webhook.py) is
believed; the caller joining makes its call active, the caller leaving
(``participant_left`` of ``caller``) or the room closing (``room_finished``)
ends the call of that room, as a hang-up on the media socket does. Rooms that
are no live call are acknowledged (200) and ignored."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from livekit.protocol.models import DisconnectReason
from livekit.protocol.webhook import WebhookEvent
from pydantic import BaseModel

from voxfleet.domain.calls import EndReason
from voxfleet.errors import NotFound, VoxfleetError
from voxfleet.observability.logging import get_logger
from voxfleet.observability.metrics import LIVEKIT_WEBHOOKS
from voxfleet.roles.api_models import error_responses
from voxfleet.roles.deps import LandingDep
from voxfleet.transport.livekit.grants import CALLER_IDENTITY
from voxfleet.transport.livekit.landing import LiveKitLanding
from voxfleet.transport.livekit.rooms import LiveKitRooms

log = get_logger(__name__)
router = APIRouter()
Action = Literal["call_active", "call_ended", "ignored"]


class WebhookTaken(BaseModel):
    event: str
    room: str
    action: Action


def get_livekit(landing: LandingDep) -> LiveKitLanding:
    if landing.livekit is None:
        raise NotFound("livekit: this server's transport is not LiveKit (VOXFLEET_TRANSPORT)")
    return landing.livekit


LiveKitDep = Annotated[LiveKitLanding, Depends(get_livekit)]


@router.post("/api/livekit/webhook", responses=error_responses(400, 401, 404, 413, 503))
async def livekit_webhook(request: Request, livekit: LiveKitDep) -> WebhookTaken:
    body = await request.body()
    event = await livekit.webhooks.verify(body, request.headers.get("authorization"))
    try:
        action = await _take(livekit.rooms, event)
    except VoxfleetError:
        await livekit.webhooks.failed(event)  # answered 5xx: LiveKit sends it again
        raise
    room = event.room.name[:64]
    LIVEKIT_WEBHOOKS.labels(action).inc()
    log.info("livekit webhook taken", event=event.event, call_id=room, action=action)
    return WebhookTaken(event=event.event, room=room, action=action)


async def _take(rooms: LiveKitRooms, event: WebhookEvent) -> Action:
    room = event.room.name
    is_caller = event.participant.identity == CALLER_IDENTITY
    if event.event == "participant_joined" and is_caller:
        return "call_active" if await rooms.joined(room) else "ignored"
    if event.event == "participant_left" and is_caller:
        by_caller = event.participant.disconnect_reason == DisconnectReason.CLIENT_INITIATED
        reason = EndReason.CALLER_ENDED if by_caller else EndReason.CALLER_DISCONNECTED
        return "call_ended" if await rooms.end(room, reason) else "ignored"
    if event.event == "room_finished":
        ended = await rooms.end(room, EndReason.CALLER_DISCONNECTED)
        return "call_ended" if ended else "ignored"
    return "ignored"
