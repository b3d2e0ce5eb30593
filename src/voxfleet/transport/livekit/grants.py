"""The LiveKit join tokens voxfleet hands out, signed with the official
``livekit-api`` SDK: each names one room (the call id) and grants the least a
participant needs. A caller's token lives ``livekit_token_ttl_seconds``; it
only admits the join, a joined caller is not cut when it expires."""

from __future__ import annotations

import time
from datetime import timedelta

from livekit.api import AccessToken, VideoGrants

from voxfleet.errors import ConfigError
from voxfleet.settings import Settings

CALLER_IDENTITY = "caller"
AGENT_IDENTITY_PREFIX = "agent-"
AGENT_TOKEN_TTL = timedelta(hours=1)  # an agent joins once, at once; the call may last long
MICROPHONE = "microphone"  # LiveKit's TrackSource name for a microphone track


def agent_identity(agent_id: str) -> str:
    return f"{AGENT_IDENTITY_PREFIX}{agent_id}"


def caller_grants(call_id: str) -> VideoGrants:
    """Join this one room, publish the microphone only, hear the agent; no data
    channel (the agent talks to the page, not the other way), no room admin,
    creation, listing or recording."""
    return VideoGrants(
        room_join=True,
        room=call_id,
        can_publish=True,
        can_publish_sources=[MICROPHONE],
        can_subscribe=True,
        can_publish_data=False,
        can_update_own_metadata=False,
        room_admin=False,
        room_create=False,
        room_list=False,
        room_record=False,
    )


def agent_grants(call_id: str) -> VideoGrants:
    """Join this one room, publish audio and data (captions, states), hear the
    caller; visible to the caller (not hidden). Its track sources are not
    restricted: the agent is our own process, and publishes its voice with
    whichever source its SDK sets."""
    return VideoGrants(
        room_join=True,
        room=call_id,
        can_publish=True,
        can_subscribe=True,
        can_publish_data=True,
        hidden=False,
        room_admin=False,
        room_create=False,
        room_list=False,
        room_record=False,
    )


def caller_token(settings: Settings, call_id: str) -> tuple[str, int]:
    """The caller's join token for the room of ``call_id`` and when it stops
    admitting a join (epoch seconds, never later than the token's ``exp``)."""
    ttl = settings.livekit_token_ttl_seconds
    expires = int(time.time()) + ttl  # read before signing: ``exp`` is this or later
    token = (
        _signer(settings)
        .with_identity(CALLER_IDENTITY)
        .with_name("Caller")
        .with_kind("standard")
        .with_grants(caller_grants(call_id))
        .with_ttl(timedelta(seconds=ttl))
        .to_jwt()
    )
    return token, expires


def agent_token(settings: Settings, call_id: str, agent_id: str) -> str:
    """An agent's join token for the room of ``call_id``."""
    return (
        _signer(settings)
        .with_identity(agent_identity(agent_id))
        .with_name("Agent")
        .with_kind("agent")
        .with_grants(agent_grants(call_id))
        .with_ttl(AGENT_TOKEN_TTL)
        .to_jwt()
    )


def _signer(settings: Settings) -> AccessToken:
    key, secret = settings.livekit_api_key, settings.livekit_api_secret
    if not key or secret is None or not secret.get_secret_value():
        raise ConfigError(
            "livekit_api_key and livekit_api_secret are needed to sign LiveKit tokens "
            "(VOXFLEET_LIVEKIT_API_KEY, VOXFLEET_LIVEKIT_API_SECRET or _FILE)"
        )
    return AccessToken(key, secret.get_secret_value())
