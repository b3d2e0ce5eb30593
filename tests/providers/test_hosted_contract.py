"""Contract tests of the hosted providers (the official openai SDK) against a
local stand-in that speaks the documented wire formats of Azure OpenAI and
OpenAI (tests/support/openai_standin.py): the paths, the api-version, each
credential, streamed chat with tool calls, a multipart WAV up, streamed PCM
down, and what each error becomes."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest
from azure.core.credentials import AccessToken

from tests.audio import tone
from tests.support.openai_standin import SPEECH_RATE, StandIn, standin
from voxfleet.audio import pcm16_to_float
from voxfleet.errors import ConfigError, ProviderError, ProviderUnavailable
from voxfleet.providers.chat import ChatMessage, GenerationParams, ToolCall, ToolSpec
from voxfleet.providers.endpoints import Endpoint, parse_endpoints
from voxfleet.providers.faults import ProviderFault
from voxfleet.providers.hosted.client import AZURE_SCOPE, make_client
from voxfleet.providers.hosted.llm import HostedLLM
from voxfleet.providers.hosted.stt import HostedSTT
from voxfleet.providers.hosted.tts import HostedTTS

pytestmark = pytest.mark.unit

H = TypeVar("H", HostedLLM, HostedSTT, HostedTTS)
PARAMS = GenerationParams(temperature=0.2, top_p=0.9, max_tokens=40)
LOOKUP = ToolSpec(
    "lookup",
    "Look it up.",
    {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
)


def openai_endpoint(stand: StandIn, **fields: Any) -> Endpoint:
    defaults = {"name": "compat", "url": stand.url, "auth": "none", "llm": "m", "stt": "w"}
    return Endpoint.model_validate(defaults | {"tts": "t"} | fields)


def azure_endpoint(stand: StandIn, **fields: Any) -> Endpoint:
    defaults = {
        "name": "azure",
        "api": "azure",
        "url": stand.root,
        "api_version": "2024-10-21",
        "llm": "chat-deployment",
        "stt": "whisper-deployment",
        "tts": "tts-deployment",
    }
    return Endpoint.model_validate(defaults | fields)


@contextlib.asynccontextmanager
async def hosted(cls: type[H], endpoint: Endpoint, credential: Any = None) -> AsyncIterator[H]:
    """A hosted provider on its own SDK client, closed after."""
    client = make_client(endpoint, credential)
    try:
        yield cls(endpoint, client)  # type: ignore[call-arg]
    finally:
        await client.close()


async def collect(llm: HostedLLM, messages: list[ChatMessage], tools: list[ToolSpec]) -> list[Any]:
    return [p async for p in llm.stream(messages, PARAMS, tools)]


async def test_chat_streams_on_the_openai_paths() -> None:
    async with standin() as stand, hosted(HostedLLM, openai_endpoint(stand)) as llm:
        pieces = await collect(llm, [ChatMessage("user", "hello there")], [])
    assert (
        "".join(p for p in pieces if isinstance(p, str))
        == "You said hello there. Thanks, I got it."
    )
    (seen,) = stand.requests("chat")
    assert seen.path == "/v1/chat/completions"
    assert seen.body["stream"] is True and seen.body["model"] == "m"
    assert seen.body["max_tokens"] == 40 and "tools" not in seen.body


async def test_azure_uses_the_deployment_path_the_api_version_and_the_key_file(
    tmp_path: Path,
) -> None:
    key_file = tmp_path / "azure-key"
    key_file.write_text("first-key\n")
    async with (
        standin(key="first-key") as stand,
        hosted(HostedLLM, azure_endpoint(stand, api_key_file=str(key_file))) as llm,
    ):
        await collect(llm, [ChatMessage("user", "hi")], [])
        # Key Vault rotates the key in place: the next request sends the new one.
        key_file.write_text("second-key")
        os.utime(key_file, ns=(1, 1))  # a new stamp even within the clock's resolution
        stand.key = "second-key"
        await collect(llm, [ChatMessage("user", "hi again")], [])
    first, second = stand.requests("chat")
    assert first.path == "/openai/deployments/chat-deployment/chat/completions"
    assert first.query["api-version"] == "2024-10-21"
    assert first.headers["api-key"] == "first-key" and second.headers["api-key"] == "second-key"


class StaticCredential:
    """An azure-identity async credential, as DefaultAzureCredential is on AKS
    (workload identity), that hands out a fixed token and notes the scopes."""

    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken("entra-token", 4102444800)

    async def close(self) -> None:
        return None

    async def __aenter__(self) -> StaticCredential:
        return self

    async def __aexit__(self, *args: object) -> None:
        return None


async def test_entra_id_sends_a_bearer_token_for_the_cognitive_services_scope() -> None:
    credential = StaticCredential()
    async with (
        standin(bearer="entra-token") as stand,
        hosted(HostedLLM, azure_endpoint(stand, auth="entra"), credential) as llm,
    ):
        await collect(llm, [ChatMessage("user", "hi")], [])
    (seen,) = stand.requests("chat")
    assert seen.headers["authorization"] == "Bearer entra-token" and "api-key" not in seen.headers
    assert credential.scopes == [(AZURE_SCOPE,)]


async def test_tool_calls_are_offered_and_assembled_from_their_fragments() -> None:
    async with standin() as stand:
        stand.reply("Let me check.", [{"name": "lookup", "arguments": {"query": "opening hours"}}])
        async with hosted(HostedLLM, openai_endpoint(stand)) as llm:
            pieces = await collect(llm, [ChatMessage("user", "when are you open?")], [LOOKUP])
            call = next(p for p in pieces if isinstance(p, ToolCall))
            # The tool's result goes back as a tool message tied to the call.
            follow_up = [
                ChatMessage("user", "when are you open?"),
                ChatMessage("assistant", "Let me check.", tool_calls=(call,)),
                ChatMessage("tool", "Hours: 7 to 6.", tool_call_id=call.id),
            ]
            await collect(llm, follow_up, [LOOKUP])
    assert call.name == "lookup" and call.parsed_arguments() == {"query": "opening hours"}
    first, second = stand.requests("chat")
    assert first.body["tools"][0]["function"]["name"] == "lookup"
    assistant, tool = second.body["messages"][1:]
    assert assistant["tool_calls"][0]["function"]["arguments"] == json.dumps(
        {"query": "opening hours"}
    )
    assert tool == {"role": "tool", "content": "Hours: 7 to 6.", "tool_call_id": call.id}


async def test_an_endpoint_without_tools_is_not_offered_any() -> None:
    async with (
        standin() as stand,
        hosted(HostedLLM, openai_endpoint(stand, tools=False)) as llm,
    ):
        await collect(llm, [ChatMessage("user", "x")], [LOOKUP])
    assert "tools" not in stand.requests("chat")[0].body


async def test_transcription_uploads_a_wav_and_reads_the_text() -> None:
    async with standin() as stand, hosted(HostedSTT, azure_endpoint(stand, auth="none")) as stt:
        text = await stt.transcribe(pcm16_to_float(tone(1.2)))
    assert text == "utterance 1.2 seconds"
    (seen,) = stand.requests("transcription")
    assert seen.path == "/openai/deployments/whisper-deployment/audio/transcriptions"
    assert seen.body["model"] == "whisper-deployment" and seen.body["file_bytes"] > 38000


async def test_speech_streams_pcm_at_24_khz() -> None:
    async with (
        standin() as stand,
        hosted(HostedTTS, openai_endpoint(stand, voice="nova")) as tts,
    ):
        pcm = await tts.synthesize("Hello", rate=1.0)
    assert tts.sample_rate == SPEECH_RATE
    assert len(pcm) == int(SPEECH_RATE * 0.06 * 5) * 2  # 60 ms a letter, all of it
    (seen,) = stand.requests("speech")
    assert seen.body == {
        "model": "t",
        "voice": "nova",
        "input": "Hello",
        "response_format": "pcm",
        "speed": 1.0,
    }


async def test_a_429_is_retried_and_reported_as_a_retried_fault() -> None:
    faults: list[ProviderFault] = []
    async with standin() as stand:
        stand.fail("chat", "429")
        async with hosted(HostedLLM, openai_endpoint(stand)) as llm:
            messages = [ChatMessage("user", "x")]
            pieces = [p async for p in llm.stream(messages, PARAMS, (), faults.append)]
    assert pieces and len(stand.requests("chat")) == 2
    assert [(f.error.code, f.retrying) for f in faults] == [("provider_unavailable", True)]


async def test_5xx_past_the_attempts_is_unavailable_and_a_400_is_not_retried() -> None:
    async with standin() as stand:
        endpoint = openai_endpoint(stand, attempts=2)
        async with hosted(HostedSTT, endpoint) as stt, hosted(HostedTTS, endpoint) as tts:
            stand.fail("transcription", "500", times=2)
            with pytest.raises(ProviderUnavailable, match="HTTP 500: injected 500"):
                await stt.transcribe(np.zeros(16000, dtype=np.float32))
            stand.key = "required"
            with pytest.raises(ProviderError, match="HTTP 401"):
                await tts.synthesize("Hello")
    assert len(stand.requests("transcription")) == 2 and len(stand.requests("speech")) == 1


@pytest.mark.parametrize(
    ("toml", "says"),
    [
        ('[endpoint.a]\nurl = "http://x/v1"\nllm = "m"\n', "endpoint.a: api_key_file: required"),
        (
            '[endpoint.a]\napi = "azure"\nurl = "https://x"\nauth = "none"\nllm = "m"\n',
            "api_version",
        ),
        ('[endpoint.a]\nurl = "http://x/v1"\nauth = "entra"\nllm = "m"\n', "needs api = 'azure'"),
        ('[endpoint.a]\nurl = "ftp://x"\nauth = "none"\nllm = "m"\n', "endpoint.a.url"),
        ('[endpoint.a]\nurl = "http://x/v1"\nauth = "none"\n', "name at least one of llm"),
        ('[endpoint.a]\nurl = "http://x"\nauth = "none"\nllm = "m"\nkey = "k"\n', "endpoint.a.key"),
        ('[endpoints.a]\nurl = "http://x"\n', "unknown table 'endpoints'"),
    ],
)
def test_a_wrong_endpoint_is_refused_by_name(toml: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        parse_endpoints(toml, "endpoints.toml")


def test_a_missing_key_file_is_a_start_up_error(tmp_path: Path) -> None:
    endpoint = Endpoint(
        name="a", url="http://127.0.0.1:9/v1", api_key_file=tmp_path / "absent", llm="m"
    )
    with pytest.raises(ConfigError, match="api_key_file: cannot read"):
        make_client(endpoint)
