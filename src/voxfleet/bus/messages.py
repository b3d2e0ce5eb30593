"""Framing of room messages on the bus: one byte of kind, then the payload.

``A`` + PCM16LE audio; ``J`` + UTF-8 JSON object with a ``type``; ``N`` + 8-byte
epoch + 8-byte sequence number + one ``A`` or ``J`` message: a message of a
numbered stream (transport/stream.py), which the receiver puts in order, drops
when duplicated and asks again when missing. The same bytes cross the
in-process bus and Redis, so both are tested by the same code."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from voxfleet.errors import MalformedMessage

AUDIO = b"A"
JSON = b"J"
NUMBERED = b"N"
_HEADER = 17  # kind + epoch + seq


@dataclass(slots=True, frozen=True)
class Audio:
    pcm: bytes


@dataclass(slots=True, frozen=True)
class Control:
    type: str
    body: dict[str, Any]


@dataclass(slots=True, frozen=True)
class Numbered:
    """Message ``seq`` (from 1) of a stream; ``epoch`` names the stream (a new
    producer starts a new, larger epoch)."""

    epoch: int
    seq: int
    message: Audio | Control


def encode_audio(pcm: bytes) -> bytes:
    return AUDIO + pcm


def encode_control(type_: str, **body: Any) -> bytes:
    return JSON + json.dumps({"type": type_, **body}, separators=(",", ":")).encode()


def encode_numbered(epoch: int, seq: int, message: bytes) -> bytes:
    """``message`` is an encoded ``A`` or ``J`` message."""
    return NUMBERED + epoch.to_bytes(8, "big") + seq.to_bytes(8, "big") + message


def decode(message: bytes) -> Audio | Control | Numbered:
    kind = message[:1]
    if kind == NUMBERED:
        if len(message) < _HEADER + 1:
            raise MalformedMessage("numbered message shorter than its header")
        inner = _decode_plain(message[_HEADER:])
        return Numbered(
            int.from_bytes(message[1:9], "big"), int.from_bytes(message[9:17], "big"), inner
        )
    return _decode_plain(message)


def _decode_plain(message: bytes) -> Audio | Control:
    kind, payload = message[:1], message[1:]
    if kind == AUDIO:
        return Audio(payload)
    if kind == JSON:
        try:
            body = json.loads(payload)
        except (UnicodeDecodeError, ValueError, RecursionError) as e:
            raise MalformedMessage(f"bad JSON payload: {e}") from e
        if not isinstance(body, dict) or not isinstance(body.get("type"), str):
            raise MalformedMessage("JSON payload is not an object with a string 'type'")
        return Control(body.pop("type"), body)
    raise MalformedMessage(f"unknown message kind {kind!r}")
