"""A real OTLP/HTTP trace receiver for tests: POST /v1/traces with a protobuf
ExportTraceServiceRequest, decoded with opentelemetry-proto and kept."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import uvicorn
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support.server import free_port, serving

Value = str | int | float | bool


def plain(value: AnyValue) -> Value:
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "int_value":
        return value.int_value
    if kind == "double_value":
        return value.double_value
    if kind == "bool_value":
        return value.bool_value
    raise ValueError(f"an attribute of kind {kind}")


@dataclass(slots=True)
class Received:
    spans: list[Span] = field(default_factory=list)
    services: set[str] = field(default_factory=set)
    bodies: list[bytes] = field(default_factory=list)

    @staticmethod
    def attributes(span: Span) -> dict[str, Value]:
        return {a.key: plain(a.value) for a in span.attributes}

    def named(self, prefix: str) -> list[Span]:
        return [s for s in self.spans if s.name.startswith(prefix)]


@contextlib.asynccontextmanager
async def otlp_receiver() -> AsyncIterator[tuple[str, Received]]:
    """Serve the receiver on a free port; yields (base URL, what it got)."""
    got = Received()

    async def traces(request: Request) -> Response:
        body = await request.body()
        got.bodies.append(body)
        export = ExportTraceServiceRequest.FromString(body)
        for resource_spans in export.resource_spans:
            for a in resource_spans.resource.attributes:
                if a.key == "service.name":
                    got.services.add(a.value.string_value)
            for scope in resource_spans.scope_spans:
                got.spans.extend(scope.spans)
        reply = ExportTraceServiceResponse().SerializeToString()
        return Response(reply, media_type="application/x-protobuf")

    port = free_port()
    app = Starlette(routes=[Route("/v1/traces", traces, methods=["POST"])])
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="off")
    async with serving(config):
        yield f"http://127.0.0.1:{port}", got
