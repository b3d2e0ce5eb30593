"""OpenTelemetry traces of the agent's turns, exported over OTLP/HTTP when
``OTEL_EXPORTER_OTLP_ENDPOINT`` is set (the standard variable; the standard
``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES`` apply too).

Each finished turn becomes one ``turn`` span with a child per provider call
(``stt``, ``chat`` per the GenAI semantic conventions, ``tts``), built from
the reply's record after the fact: nothing is traced on the audio path.
Provider faults and fallbacks are span events. Transcripts are personal data:
they go into a trace only with ``VOXFLEET_TRACE_CONTENT=true``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer, set_span_in_context
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from voxfleet.domain.calls import LatencyMarks
from voxfleet.observability.logging import get_logger
from voxfleet.observability.spans import ReplyRecord, Stage

log = get_logger(__name__)
EXPORT_TIMEOUT_S = 5  # per batch; a collector that is down must not hold a drain for long
AttributeValue = str | int | float | bool


class TraceSettings(BaseSettings):
    """Read once when tracing starts (this module's own: the process's
    Settings need not know about OpenTelemetry's variables)."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    endpoint: str = Field("", validation_alias="OTEL_EXPORTER_OTLP_ENDPOINT")
    traces_endpoint: str = Field("", validation_alias="OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    trace_content: bool = Field(False, validation_alias="VOXFLEET_TRACE_CONTENT")

    @property
    def url(self) -> str:
        """Where spans go: the traces endpoint as given, or ``/v1/traces`` on the base."""
        if self.traces_endpoint:
            return self.traces_endpoint
        return f"{self.endpoint.rstrip('/')}/v1/traces" if self.endpoint else ""


@dataclass(slots=True)
class _Tracing:
    provider: TracerProvider
    tracer: Tracer
    content: bool


_current: _Tracing | None = None


def start_tracing(service: str = "voxfleet-agent") -> bool:
    """Start exporting turns if an OTLP endpoint is configured; whether it did."""
    global _current  # noqa: PLW0603 - one exporter per process, like the metrics registry
    settings = TraceSettings()
    if not settings.url or _current is not None:
        return _current is not None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    exporter = OTLPSpanExporter(endpoint=settings.url, timeout=EXPORT_TIMEOUT_S)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    _current = _Tracing(provider, provider.get_tracer("voxfleet"), settings.trace_content)
    log.info("traces exported", endpoint=settings.url, content=settings.trace_content)
    return True


def stop_tracing() -> None:
    """Send what is left and stop (blocking: call it in a thread)."""
    global _current
    tracing, _current = _current, None
    if tracing is not None:
        tracing.provider.force_flush(timeout_millis=EXPORT_TIMEOUT_S * 1000)
        tracing.provider.shutdown()


def _ns(seconds: float) -> int:
    return int(seconds * 1e9)


def _ms(later: float | None, earlier: float | None) -> float | None:
    return None if later is None or earlier is None else round((later - earlier) * 1000, 1)


@dataclass(slots=True, frozen=True)
class FinishedTurn:
    """A turn as its trace tells it; the texts are kept only with trace_content."""

    call_id: str
    seq: int
    interrupted: bool
    marks: LatencyMarks
    record: ReplyRecord
    ended_at: float
    user_text: str = ""
    agent_text: str = ""


def record_turn(turn: FinishedTurn) -> None:
    """Export ``turn`` as spans, if traces are on."""
    tracing = _current
    if tracing is None:
        return
    m, r = turn.marks, turn.record
    start = min([m.speech_end or r.created_at, r.created_at, *(s.start for s in r.stages)])
    attributes: dict[str, AttributeValue | None] = {
        "voxfleet.call_id": turn.call_id,
        "voxfleet.turn.seq": turn.seq,
        "voxfleet.turn.interrupted": turn.interrupted,
        "voxfleet.latency.end_of_turn_ms": _ms(m.turn_decided, m.speech_end),
        "voxfleet.latency.stt_ms": _ms(m.stt_done, m.speech_end),
        "voxfleet.latency.llm_first_token_ms": _ms(m.llm_first_token, m.speech_end),
        "voxfleet.latency.tts_first_audio_ms": _ms(m.tts_first_audio, m.speech_end),
        "voxfleet.latency.voice_to_voice_ms": _ms(m.first_audio_sent, m.speech_end),
    }
    if tracing.content:
        attributes["voxfleet.turn.user_text"] = turn.user_text
        attributes["voxfleet.turn.agent_text"] = turn.agent_text
    span = tracing.tracer.start_span(
        "turn", kind=SpanKind.INTERNAL, start_time=_ns(start), attributes=_set(attributes)
    )
    context = set_span_in_context(span)
    for stage in r.stages:
        child = tracing.tracer.start_span(
            _span_name(stage),
            context=context,
            kind=SpanKind.CLIENT,
            start_time=_ns(stage.start),
            attributes=_set(_stage_attributes(stage, turn.call_id)),
        )
        _end(child, stage.error, stage.end)
    for mark in r.faults:
        f = mark.fault
        span.add_event(
            "provider.fault" if f.retrying else "provider.fallback",
            {"voxfleet.provider.kind": f.kind, "voxfleet.provider.name": f.provider}
            | {"error.type": f.error.code, "voxfleet.provider.retrying": f.retrying},
            timestamp=_ns(mark.at),
        )
    _end(span, "", max(turn.ended_at, *(s.end for s in r.stages), start))


def _span_name(stage: Stage) -> str:
    if stage.kind == "llm":  # GenAI conventions: "{operation} {model}"
        return f"chat {stage.model}" if stage.model else "chat"
    return stage.kind


def _stage_attributes(stage: Stage, call_id: str) -> dict[str, AttributeValue | None]:
    out: dict[str, AttributeValue | None] = {
        "voxfleet.call_id": call_id,
        "voxfleet.provider.kind": stage.kind,
        "voxfleet.provider.name": stage.provider,
    }
    if stage.kind == "llm":
        out |= {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": stage.provider,
            "gen_ai.system": stage.provider,
            "gen_ai.request.model": stage.model or None,
        }
    return out


def _set(attributes: Mapping[str, AttributeValue | None]) -> dict[str, AttributeValue]:
    return {k: v for k, v in attributes.items() if v is not None}


def _end(span: Span, error: str, end: float) -> None:
    if error:
        span.set_status(Status(StatusCode.ERROR, error))
        span.set_attribute("error.type", error)
    span.end(end_time=_ns(end))
