"""A local stand-in for Azure OpenAI and OpenAI-compatible services, for
contract tests: it speaks their documented wire formats (Chat Completions with
server-sent events and tool calls, audio transcriptions from a multipart WAV,
streamed ``pcm`` speech), on both the OpenAI paths (``/v1/...``) and Azure's
(``/openai/deployments/<deployment>/...?api-version=``), checks the credential
each sends (``Authorization: Bearer`` or Azure's ``api-key`` header), and
records every request.

What it answers is scripted, so a test can tell which turn was answered:
chat echoes the last user message ("You said <it>.") unless a test queued
replies (text or tool calls); a transcription names coded test speech the way
the scripted STT does; speech is a tone of 60 ms per letter at 24 kHz.

Faults are queued per stage (``chat``, ``transcription``, ``speech``) and
taken one per request: ``hang`` (no answer; chat sends keep-alive comments
all along, which must not count as output), ``stall`` (chat: three words,
then nothing), ``break`` (chat: three words, then the connection is cut;
speech: half the audio), ``429``, ``500``, ``silent`` (speech: zeros) and
``empty`` (speech: no audio; chat: no content)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import time
import wave
from collections import defaultdict, deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from tests.support.server import free_port, serving
from voxfleet.audio import pcm16_to_float
from voxfleet.providers.scripted import ScriptedSTT

SPEECH_RATE = 24000
STAGES = ("chat", "transcription", "speech")


@dataclass
class Seen:
    """One request as the stand-in received it."""

    stage: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: dict[str, Any]
    at: float


@dataclass
class StandIn:
    """State and controls of a running stand-in."""

    url: str  # the OpenAI-style base URL (…/v1); Azure's endpoint is ``root``
    root: str
    key: str | None = None  # required credential: Bearer or api-key
    bearer: str | None = None  # or: a required Entra token
    faults: dict[str, deque[str]] = field(default_factory=lambda: defaultdict(deque))
    replies: deque[dict[str, Any]] = field(default_factory=deque)
    seen: list[Seen] = field(default_factory=list)
    first_token_delay: float = 0.02
    closing: asyncio.Event = field(default_factory=asyncio.Event)  # hangs end with the server

    def fail(self, stage: str, fault: str, times: int = 1) -> None:
        assert stage in STAGES, stage
        self.faults[stage].extend([fault] * times)

    def reply(self, text: str = "", tool_calls: list[dict[str, Any]] | None = None) -> None:
        """Queue the next chat reply: text, and tool calls ({"name", "arguments"})."""
        self.replies.append({"text": text, "tool_calls": tool_calls or []})

    def requests(self, stage: str) -> list[Seen]:
        return [s for s in self.seen if s.stage == stage]


def _error(status: int, message: str) -> JSONResponse:
    kind = "rate_limit_exceeded" if status == 429 else "server_error"
    body = {"error": {"message": message, "type": kind, "code": str(status)}}
    return JSONResponse(body, status_code=status, headers={"retry-after-ms": "50"})


def create_standin_app(state: StandIn) -> FastAPI:
    app = FastAPI()

    def authorized(request: Request) -> bool:
        auth = request.headers.get("authorization", "")
        if state.bearer is not None:
            return auth == f"Bearer {state.bearer}"
        if state.key is not None:
            return auth == f"Bearer {state.key}" or request.headers.get("api-key") == state.key
        return True

    async def admit(request: Request, stage: str, body: dict[str, Any]) -> str | Response:
        """Record the request; an auth failure or a queued fault, or "" to serve it."""
        state.seen.append(
            Seen(
                stage,
                request.url.path,
                dict(request.query_params),
                {k.lower(): v for k, v in request.headers.items()},
                body,
                time.time(),
            )
        )
        if request.url.path.startswith("/openai/") and "api-version" not in request.query_params:
            return _error(400, "missing api-version")
        if not authorized(request):
            return JSONResponse({"error": {"message": "unauthorized"}}, status_code=401)
        fault = state.faults[stage].popleft() if state.faults[stage] else ""
        if fault in ("429", "500"):
            return _error(int(fault), f"injected {fault}")
        if fault == "hang" and stage != "chat":
            await state.closing.wait()
            return _error(503, "shutting down")
        return fault

    @app.post("/v1/chat/completions")
    @app.post("/openai/deployments/{deployment}/chat/completions")
    async def chat(request: Request) -> Response:
        body = await request.json()
        fault = await admit(request, "chat", body)
        if isinstance(fault, Response):
            return fault
        return StreamingResponse(_chat_events(state, body, fault), media_type="text/event-stream")

    @app.post("/v1/audio/transcriptions")
    @app.post("/openai/deployments/{deployment}/audio/transcriptions")
    async def transcriptions(request: Request) -> Response:
        async with request.form() as form:
            upload = form["file"]
            assert not isinstance(upload, str), "file must be a file part"
            wav = await upload.read()
            fields = {k: v for k, v in form.items() if isinstance(v, str)}
        body = fields | {"file_bytes": len(wav)}
        fault = await admit(request, "transcription", body)
        if isinstance(fault, Response):
            return fault
        with wave.open(io.BytesIO(wav)) as w:
            if (w.getnchannels(), w.getsampwidth()) != (1, 2):
                return _error(400, "expected mono 16-bit WAV")
            audio = pcm16_to_float(w.readframes(w.getnframes()))
        text = await ScriptedSTT(delay=0.0)._transcribe(audio)
        return JSONResponse({"text": text})

    @app.post("/v1/audio/speech")
    @app.post("/openai/deployments/{deployment}/audio/speech")
    async def speech(request: Request) -> Response:
        body = await request.json()
        fault = await admit(request, "speech", body)
        if isinstance(fault, Response):
            return fault
        if body.get("response_format") != "pcm":
            return _error(400, "this stand-in speaks pcm only")
        return StreamingResponse(_speech(body["input"], float(body.get("speed", 1.0)), fault))

    return app


async def _chat_events(state: StandIn, body: dict[str, Any], fault: str) -> AsyncIterator[bytes]:
    def event(delta: dict[str, Any], finish: str | None = None) -> bytes:
        chunk = {
            "id": "chatcmpl-standin",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": body.get("model", ""),
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        return f"data: {json.dumps(chunk)}\n\n".encode()

    if fault == "hang":
        while not state.closing.is_set():  # bytes, but never a token
            yield b": keep-alive\n\n"
            await asyncio.sleep(0.1)
        return
    await asyncio.sleep(state.first_token_delay)
    scripted = state.replies.popleft() if state.replies else None
    if fault == "empty":
        text, calls = "", []
    elif scripted is not None:
        text, calls = scripted["text"], scripted["tool_calls"]
    else:
        users = [m for m in body["messages"] if m["role"] == "user"]
        heard = users[-1]["content"] if users else ""
        text, calls = f"You said {heard}. Thanks, I got it.", []
    if calls and not body.get("tools"):
        calls = []  # no tools were offered: the model cannot call one
    yield event({"role": "assistant", "content": ""})
    for i, word in enumerate(text.split(" ") if text else []):
        if fault in ("break", "stall") and i == 3:
            if fault == "stall":
                await state.closing.wait()
            raise ConnectionResetError("injected break")  # uvicorn cuts the response off
        yield event({"content": word if i == 0 else " " + word})
        await asyncio.sleep(0.005)
    for index, call in enumerate(calls):
        arguments = json.dumps(call.get("arguments", {}))
        head = {"index": index, "id": f"call_{index}", "type": "function"}
        yield event({"tool_calls": [head | {"function": {"name": call["name"], "arguments": ""}}]})
        for part in (arguments[: len(arguments) // 2], arguments[len(arguments) // 2 :]):
            yield event({"tool_calls": [{"index": index, "function": {"arguments": part}}]})
    yield event({}, "tool_calls" if calls else "stop")
    yield b"data: [DONE]\n\n"


async def _speech(text: str, speed: float, fault: str) -> AsyncIterator[bytes]:
    samples = int(SPEECH_RATE * 0.06 * len(text.replace(" ", "")) / speed)
    t = np.arange(samples) / SPEECH_RATE
    amplitude = 0 if fault == "silent" else 8000
    pcm = (np.sin(2 * np.pi * 300 * t) * amplitude).astype("<i2").tobytes()
    if fault == "empty":
        return
    if fault == "break":
        pcm = pcm[: len(pcm) // 2]
    step = SPEECH_RATE // 10 * 2  # 100 ms of audio per chunk
    for start in range(0, len(pcm), step):
        yield pcm[start : start + step]
        await asyncio.sleep(0.001)
    if fault == "break":
        raise ConnectionResetError("injected break")


@contextlib.asynccontextmanager
async def standin(key: str | None = None, bearer: str | None = None) -> AsyncIterator[StandIn]:
    """Run a stand-in on a free port in this event loop."""
    port = free_port()
    root = f"http://127.0.0.1:{port}"
    state = StandIn(url=f"{root}/v1", root=root, key=key, bearer=bearer)
    config = uvicorn.Config(
        create_standin_app(state), host="127.0.0.1", port=port, log_config=None, lifespan="off"
    )
    async with serving(config, timeout=10):
        try:
            yield state
        finally:
            state.closing.set()  # hanging answers end, so the server can stop
