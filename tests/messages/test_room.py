"""Room messages on the bus: what the edge and the agents encode decodes back
to the same thing on the right topic, and anything else is a MalformedMessage."""

from __future__ import annotations

import pytest

from voxfleet.errors import MalformedMessage
from voxfleet.messages.client import State, Transcript
from voxfleet.messages.room import (
    AgentFailed,
    Attached,
    AudioFrame,
    Hangup,
    Numbered,
    Replay,
    Tick,
    decode_control,
    decode_down,
    decode_up,
    encode,
    encode_audio,
    encode_numbered,
)

pytestmark = pytest.mark.unit

PCM = bytes(range(256)) * 4
EPOCH = 1_764_000_000_000_000
ATTACHED = Attached(
    agent_id="agent-1",
    fence=3,
    resume=True,
    replay_epoch=EPOCH,
    replay_from=41,
    sample_rate=22050,
    enqueued_at=1.5,
)


@pytest.mark.parametrize("seq", [1, 123_456, 2**64 - 1])
def test_numbered_messages_round_trip(seq: int) -> None:
    assert decode_up(encode_numbered(EPOCH, seq, encode_audio(PCM))) == Numbered(
        EPOCH, seq, AudioFrame(PCM)
    )
    assert decode_up(encode_numbered(EPOCH, seq, encode(Hangup(reason="x")))) == Numbered(
        EPOCH, seq, Hangup(reason="x")
    )
    for message in (
        ATTACHED,
        State(state="thinking"),
        Transcript(role="user", text="é ☕", final=True, seq=2),
    ):
        assert decode_down(encode_numbered(EPOCH, seq, encode(message))).message == message


def test_attached_without_a_replay_position_round_trips() -> None:
    joined = ATTACHED.model_copy(update={"replay_from": None})
    assert decode_down(encode_numbered(1, 1, encode(joined))).message == joined


def test_control_messages_round_trip() -> None:
    for message in (
        Tick(stream="up", epoch=EPOCH, seq=9),
        Replay(stream="down", epoch=EPOCH, after=8),
        AgentFailed(epoch=EPOCH),
    ):
        assert decode_control(encode(message)) == message


def test_wire_format_is_kind_byte_then_payload() -> None:
    # The same bytes cross Redis between processes of different versions.
    assert encode_audio(b"\x01\x02") == b"A\x01\x02"
    assert encode_numbered(7, 5, b"A\x01\x02") == (
        b"N" + (7).to_bytes(8, "big") + (5).to_bytes(8, "big") + b"A\x01\x02"
    )
    assert encode(Hangup(reason="caller_ended")) == b'J{"type":"hangup","reason":"caller_ended"}'


def test_fields_a_newer_peer_adds_are_ignored() -> None:
    raw = b'J{"type":"tick","stream":"up","epoch":1,"seq":2,"load":0.5}'
    assert decode_control(raw) == Tick(stream="up", epoch=1, seq=2)


def _numbered(inner: bytes) -> bytes:
    return encode_numbered(1, 1, inner)


@pytest.mark.parametrize(
    ("decoder", "message"),
    [
        pytest.param(decode_up, b"", id="empty"),
        pytest.param(decode_up, b"A\x00\x01", id="not-numbered"),
        pytest.param(decode_up, b"N" + b"\x00" * 16, id="numbered-without-message"),
        pytest.param(decode_up, _numbered(b"X"), id="unknown-inner"),
        pytest.param(decode_up, _numbered(b"J{not json"), id="bad-json"),
        pytest.param(
            decode_up, _numbered(b'J{"type":"state","state":"listening"}'), id="down-type-up"
        ),
        pytest.param(decode_down, _numbered(b'J{"type":"hangup","reason":"x"}'), id="up-type-down"),
        pytest.param(decode_down, _numbered(b"J\xff\xfe"), id="not-utf8"),
        pytest.param(decode_down, _numbered(b"J[1, 2]"), id="json-array"),
        pytest.param(decode_down, _numbered(b'J{"reason": "x"}'), id="missing-type"),
        pytest.param(decode_down, _numbered(b'J{"type": 5}'), id="type-not-a-string"),
        pytest.param(
            decode_down, _numbered(b'J{"type":"state","state":"dancing"}'), id="bad-field"
        ),
        pytest.param(decode_down, _numbered(_numbered(b"A")), id="numbered-in-numbered"),
        pytest.param(decode_control, b"A\x00", id="audio-on-control"),
        pytest.param(
            decode_control,
            b'J{"type":"tick","stream":"sideways","epoch":1,"seq":1}',
            id="bad-stream",
        ),
        pytest.param(decode_control, b'J{"type":"hangup","reason":"x"}', id="hangup-on-control"),
    ],
)
def test_malformed_message_raises(decoder: object, message: bytes) -> None:
    with pytest.raises(MalformedMessage):
        decoder(message)  # type: ignore[operator]
