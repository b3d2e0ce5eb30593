"""LiveKit webhooks as a LiveKit server sends them, built with livekit-api's own
code: the event as protobuf JSON, signed by an AccessToken whose sha256 claim
is the body's digest."""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from datetime import timedelta

from google.protobuf.json_format import MessageToJson
from livekit.api import AccessToken
from livekit.protocol.models import DisconnectReason, ParticipantInfo, Room
from livekit.protocol.webhook import WebhookEvent

KEY = "APIvoxfleetTest"
SECRET = "a-livekit-secret-of-at-least-32-chars"
LIVEKIT = {
    "transport": "livekit",
    "livekit_url": "wss://lk.example.com",
    "livekit_api_key": KEY,
    "livekit_api_secret": SECRET,
}


def event(
    kind: str,
    room: str,
    identity: str | None = None,
    *,
    age: float = 0.0,
    reason: DisconnectReason.ValueType = DisconnectReason.CLIENT_INITIATED,
) -> WebhookEvent:
    participant = ParticipantInfo(identity=identity, disconnect_reason=reason) if identity else None
    return WebhookEvent(
        event=kind,
        room=Room(name=room),
        participant=participant,
        id=f"EV_{uuid.uuid4().hex[:12]}",
        created_at=int(time.time() - age),
    )


def signed(ev: WebhookEvent, secret: str = SECRET) -> tuple[str, dict[str, str]]:
    """(body, headers) of the webhook LiveKit would send for ``ev``."""
    body = MessageToJson(ev)
    return body, {
        "Authorization": signature(body, secret),
        "Content-Type": "application/webhook+json",
    }


def signature(body: str, secret: str = SECRET) -> str:
    """The ``Authorization`` header LiveKit signs ``body`` with."""
    digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
    return AccessToken(KEY, secret).with_sha256(digest).with_ttl(timedelta(minutes=5)).to_jwt()
