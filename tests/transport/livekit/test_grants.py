"""LiveKit join tokens, read back with livekit-api's own TokenVerifier: each
names one room and grants the least its holder needs, for the configured TTL."""

from __future__ import annotations

import time

import jwt
import pytest
from livekit.api import TokenVerifier
from pydantic import SecretStr

from voxfleet.errors import ConfigError
from voxfleet.settings import Settings
from voxfleet.transport.livekit.grants import agent_token, caller_token

pytestmark = pytest.mark.unit

KEY = "APIvoxfleetTest"
SECRET = "a-livekit-secret-of-at-least-32-chars"
CALL = "c_abcdefghijklmnop"


@pytest.fixture
def settings() -> Settings:
    return Settings(
        transport="livekit",
        livekit_url="wss://lk.example.com",
        livekit_api_key=KEY,
        livekit_api_secret=SecretStr(SECRET),
        livekit_token_ttl_seconds=90,
        _env_file=None,  # type: ignore[call-arg]
    )


def test_caller_token_joins_only_its_room_with_least_grants(settings: Settings) -> None:
    before = int(time.time())
    token, expires = caller_token(settings, CALL)
    claims = TokenVerifier(KEY, SECRET).verify(token)
    video = claims.video
    assert video is not None
    assert claims.identity == "caller"
    assert (video.room_join, video.room) == (True, CALL)
    assert video.can_publish and video.can_subscribe
    assert video.can_publish_sources == ["microphone"]
    assert video.can_publish_data is False
    assert not (video.room_admin or video.room_create or video.room_list or video.room_record)
    assert not video.hidden and not video.agent
    exp = jwt.decode(token, options={"verify_signature": False})["exp"]
    assert before + 90 <= expires <= exp <= int(time.time()) + 90


def test_agent_token_publishes_audio_and_data_visibly(settings: Settings) -> None:
    claims = TokenVerifier(KEY, SECRET).verify(agent_token(settings, CALL, "pod-7"))
    video = claims.video
    assert video is not None
    assert claims.identity == "agent-pod-7"
    assert claims.kind == "agent"
    assert (video.room_join, video.room) == (True, CALL)
    assert video.can_publish and video.can_subscribe and video.can_publish_data
    assert not video.hidden
    assert not (video.room_admin or video.room_create or video.room_list or video.room_record)


def test_a_token_signed_with_another_secret_is_refused(settings: Settings) -> None:
    token, _ = caller_token(settings, CALL)
    with pytest.raises(jwt.InvalidSignatureError):
        TokenVerifier(KEY, "another-secret-of-at-least-32-chars!!").verify(token)


def test_without_livekit_credentials_no_token_is_signed() -> None:
    plain = Settings(_env_file=None)  # type: ignore[call-arg]
    with pytest.raises(ConfigError, match="livekit_api_key and livekit_api_secret"):
        caller_token(plain, CALL)
