"""What a landing needs when LiveKit carries the callers' media: the rooms
it queues and ends, and the checker of LiveKit's webhooks."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from voxfleet.errors import ConfigError
from voxfleet.settings import Settings
from voxfleet.store.repository import CallStore
from voxfleet.transport.edge_link import Dispatch
from voxfleet.transport.livekit.rooms import LiveKitRooms
from voxfleet.transport.livekit.seen import seen_events
from voxfleet.transport.livekit.webhook import WebhookCheck, WebhookVerifier


@dataclass(slots=True, frozen=True)
class LiveKitLanding:
    rooms: LiveKitRooms
    webhooks: WebhookVerifier


def build_livekit_landing(
    settings: Settings, dispatch: Dispatch, store: CallStore, redis: Redis | None
) -> LiveKitLanding:
    key, secret = settings.livekit_api_key, settings.livekit_api_secret
    if not key or secret is None:
        raise ConfigError("transport=livekit needs livekit_api_key and livekit_api_secret")
    check = WebhookCheck(key, secret.get_secret_value(), settings.livekit_webhook_max_age_seconds)
    return LiveKitLanding(LiveKitRooms(dispatch, store), WebhookVerifier(check, seen_events(redis)))
