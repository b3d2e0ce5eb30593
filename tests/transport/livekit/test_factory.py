"""The agent's link by transport, and the LiveKit join token it makes: the
call's room, ``agent-<agent id>``, publish, publish data and subscribe."""

from __future__ import annotations

import pytest
from livekit import api
from pydantic import SecretStr

from voxfleet.bus.memory import InProcessBus
from voxfleet.roles.agent import AgentConfig
from voxfleet.settings import Settings
from voxfleet.transport.bus_link import BusRoomLink
from voxfleet.transport.links import room_link
from voxfleet.transport.livekit.grants import agent_token
from voxfleet.transport.livekit.link import LiveKitRoomLink

pytestmark = pytest.mark.unit
SECRET = "a-livekit-api-secret-of-32-chars!"


def livekit_settings() -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        providers="scripted",
        transport="livekit",
        livekit_url="wss://lk.example.com",
        livekit_api_key="APIkey",
        livekit_api_secret=SecretStr(SECRET),
    )


def test_the_agent_token_admits_the_call_room_only() -> None:
    token = agent_token(livekit_settings(), "call-1", "agent-7")
    claims = api.TokenVerifier("APIkey", SECRET).verify(token)
    assert claims.identity == "agent-agent-7" and claims.kind == "agent"
    grants = claims.video
    assert grants is not None
    assert (grants.room, grants.room_join) == ("call-1", True)
    assert grants.can_publish and grants.can_publish_data and grants.can_subscribe
    assert not grants.room_admin and not grants.room_create


async def test_the_transport_chooses_the_link() -> None:
    bus = InProcessBus()
    bus_link = room_link(bus, "call-1", None, "agent-7", 22050, AgentConfig(1))
    assert isinstance(bus_link, BusRoomLink)
    config = AgentConfig(1, livekit=livekit_settings())
    lk = room_link(bus, "call-1", None, "agent-7", 22050, config, resumed=True)
    assert isinstance(lk, LiveKitRoomLink) and lk.room_id == "call-1"
    await lk.__aexit__(None, None, None)  # never joined: closes its audio source
