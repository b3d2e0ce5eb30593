"""OpenTelemetry traces of a scripted call, sent to a real OTLP/HTTP receiver:
each of the caller's turns is a span with STT, LLM (GenAI conventions) and
TTS children carrying the call id; provider faults are events; transcripts
stay out unless VOXFLEET_TRACE_CONTENT allows them."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from pathlib import Path

import pytest

from tests.support.calls import greeted_call, turn
from tests.support.otlp import Received, otlp_receiver
from tests.support.server import app_server, free_port
from voxfleet.errors import ProviderUnavailable
from voxfleet.observability.tracing import TraceSettings
from voxfleet.providers.base import LLM, Providers
from voxfleet.providers.chain import FallbackLLM
from voxfleet.providers.chat import ChatMessage, GenerationParams, Piece, ToolSpec
from voxfleet.providers.registry import build_providers
from voxfleet.roles.runtime import ProviderFactory
from voxfleet.settings import Settings

pytestmark = pytest.mark.integration


class RefusingLLM(LLM):
    """An endpoint that answers every request with 503, without retries."""

    name = "refusing"
    attempts = 1

    async def _stream(
        self, messages: Sequence[ChatMessage], params: GenerationParams, tools: Sequence[ToolSpec]
    ) -> AsyncGenerator[Piece, None]:
        raise ProviderUnavailable("refusing: 503")
        yield ""  # a generator, like every provider's stream


def refusing_first(settings: Settings) -> Providers:
    """The scripted providers, with an LLM chain whose first endpoint refuses."""
    scripted = build_providers(settings)
    chain = FallbackLLM([RefusingLLM(), scripted.llm], failures=10)
    return Providers(scripted.vad, scripted.stt, chain, scripted.tts)


async def traced_call(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    content: bool,
    providers: ProviderFactory = build_providers,
) -> Received:
    async with otlp_receiver() as (base, got):
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", base)
        monkeypatch.setenv("VOXFLEET_TRACE_CONTENT", "true" if content else "false")
        async with app_server(tmp_path, provider_factory=providers) as (url, _runtime):
            call = await greeted_call(url)
            await turn(call, 0.8, seq=1)
            await call.end()
            await call.closed()
            call_id = call.call_id
        # The app's shutdown sent the last spans.
    assert got.spans, "no span arrived"
    for span in got.spans:
        assert Received.attributes(span)["voxfleet.call_id"] == call_id
    return got


async def test_each_turn_is_a_span_with_its_provider_calls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    got = await traced_call(tmp_path, monkeypatch, content=False)
    assert got.services == {"voxfleet-agent"}
    turns = got.named("turn")
    assert sorted(Received.attributes(t)["voxfleet.turn.seq"] for t in turns) == [0, 2]
    answer = next(t for t in turns if Received.attributes(t)["voxfleet.turn.seq"] == 2)
    children = [s for s in got.spans if s.parent_span_id == answer.span_id]
    assert {s.name for s in children} >= {"stt", "chat scripted", "tts"}
    for child in children:
        assert child.trace_id == answer.trace_id
        assert answer.start_time_unix_nano <= child.start_time_unix_nano
        assert child.end_time_unix_nano <= answer.end_time_unix_nano
    (chat,) = [s for s in children if s.name.startswith("chat")]
    attributes = Received.attributes(chat)
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.request.model"] == "scripted"
    assert attributes["gen_ai.provider.name"] == "scripted-llm"
    v2v = Received.attributes(answer)["voxfleet.latency.voice_to_voice_ms"]
    assert isinstance(v2v, float) and v2v > 0
    # No transcript text by default, anywhere in what was sent.
    for body in got.bodies:
        assert b"utterance" not in body and b"user_text" not in body


async def test_transcripts_only_when_allowed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    got = await traced_call(tmp_path, monkeypatch, content=True)
    texts = [Received.attributes(t).get("voxfleet.turn.user_text") for t in got.named("turn")]
    assert "utterance 0.8 seconds" in texts


async def test_provider_faults_and_fallbacks_are_events_of_the_turn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    got = await traced_call(tmp_path, monkeypatch, content=False, providers=refusing_first)
    answer = next(t for t in got.named("turn") if Received.attributes(t)["voxfleet.turn.seq"] == 2)
    (event,) = [e for e in answer.events if e.name == "provider.fallback"]
    attributes = {
        a.key: a.value.string_value
        for a in event.attributes
        if a.key != "voxfleet.provider.retrying"
    }
    assert attributes == {
        "voxfleet.provider.kind": "llm",
        "voxfleet.provider.name": "refusing",
        "error.type": "provider_unavailable",
    }
    assert answer.start_time_unix_nano <= event.time_unix_nano <= answer.end_time_unix_nano
    (chat,) = [
        s for s in got.spans if s.parent_span_id == answer.span_id and s.name.startswith("chat")
    ]
    assert Received.attributes(chat)["gen_ai.request.model"] == "scripted"  # the chain's models


async def test_a_collector_that_is_down_costs_the_calls_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    async with app_server(tmp_path) as (url, _runtime):
        call = await greeted_call(url)
        reply = await turn(call, 0.8, seq=1)
        await call.end()
        assert await call.closed() == (1000, "caller_ended")
    assert reply["text"].startswith("You said utterance 0.8 seconds")


def test_the_standard_variables_choose_the_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    monkeypatch.delenv("VOXFLEET_TRACE_CONTENT", raising=False)
    assert TraceSettings().url == "" and not TraceSettings().trace_content
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/")
    assert TraceSettings().url == "http://collector:4318/v1/traces"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://other:4318/t")
    assert TraceSettings().url == "http://other:4318/t"
