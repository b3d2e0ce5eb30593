"""Framing of room messages on the bus: one byte of kind, then the payload.

``A`` + PCM16LE audio; ``S`` + 8-byte frame number + PCM16LE audio (caller audio
from the edge: numbered, so an agent can spot gaps and ask for a replay);
``J`` + UTF-8 JSON object with a ``type``. The same bytes cross the in-process
bus and Redis, so both are tested by the same code."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

AUDIO = b"A"
SEQ_AUDIO = b"S"
JSON = b"J"


@dataclass(slots=True, frozen=True)
class Audio:
    pcm: bytes
    seq: int | None = None


@dataclass(slots=True, frozen=True)
class Control:
    type: str
    body: dict[str, Any]


class MalformedMessage(ValueError):
    pass


def encode_audio(pcm: bytes, seq: int | None = None) -> bytes:
    if seq is None:
        return AUDIO + pcm
    return SEQ_AUDIO + seq.to_bytes(8, "big") + pcm


def encode_control(type_: str, **body: Any) -> bytes:
    return JSON + json.dumps({"type": type_, **body}, separators=(",", ":")).encode()


def decode(message: bytes) -> Audio | Control:
    kind, payload = message[:1], message[1:]
    if kind == AUDIO:
        return Audio(payload)
    if kind == SEQ_AUDIO:
        if len(payload) < 8:
            raise MalformedMessage("numbered audio shorter than its frame number")
        return Audio(payload[8:], int.from_bytes(payload[:8], "big"))
    if kind == JSON:
        try:
            body = json.loads(payload)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
            raise MalformedMessage(f"bad JSON payload: {e}") from e
        if not isinstance(body, dict) or not isinstance(body.get("type"), str):
            raise MalformedMessage("JSON payload is not an object with a string 'type'")
        return Control(body.pop("type"), body)
    raise MalformedMessage(f"unknown message kind {kind!r}")
