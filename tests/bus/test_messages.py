"""Room message framing: what the edge and the agents put on the bus decodes back to
the same thing, and anything else is a MalformedMessage."""

from __future__ import annotations

import pytest

from voxfleet.bus.messages import (
    Audio,
    Control,
    MalformedMessage,
    Numbered,
    decode,
    encode_audio,
    encode_control,
    encode_numbered,
)

pytestmark = pytest.mark.unit

PCM = bytes(range(256)) * 4


def test_audio_round_trip() -> None:
    assert decode(encode_audio(PCM)) == Audio(PCM)
    assert decode(encode_audio(b"")) == Audio(b"")


@pytest.mark.parametrize("seq", [0, 1, 123_456, 2**64 - 1])
def test_numbered_messages_round_trip(seq: int) -> None:
    epoch = 1_764_000_000_000_000
    assert decode(encode_numbered(epoch, seq, encode_audio(PCM))) == Numbered(
        epoch, seq, Audio(PCM)
    )
    assert decode(encode_numbered(epoch, seq, encode_control("hangup", reason="x"))) == Numbered(
        epoch, seq, Control("hangup", {"reason": "x"})
    )


def test_wire_format_is_kind_byte_then_payload() -> None:
    # The same bytes cross Redis between processes of different versions.
    assert encode_audio(b"\x01\x02") == b"A\x01\x02"
    assert encode_numbered(7, 5, b"A\x01\x02") == (
        b"N" + (7).to_bytes(8, "big") + (5).to_bytes(8, "big") + b"A\x01\x02"
    )
    assert encode_control("hangup", reason="caller_ended") == (
        b'J{"type":"hangup","reason":"caller_ended"}'
    )


def test_control_round_trip() -> None:
    body = {
        "reason": "caller_ended",
        "n": 3,
        "ratio": 0.5,
        "ok": True,
        "none": None,
        "nested": {"list": [1, "two", {"three": 3}]},
        "text": "h\u00e9llo \u2615",
    }
    assert decode(encode_control("hangup", **body)) == Control("hangup", body)


def test_control_without_body() -> None:
    assert decode(encode_control("attached")) == Control("attached", {})


@pytest.mark.parametrize(
    "message",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"X\x00\x01", id="unknown-kind"),
        pytest.param(b"a\x00\x01", id="lowercase-kind"),
        pytest.param(b"S\x00\x00\x00", id="retired-kind"),
        pytest.param(b"N" + b"\x00" * 16, id="numbered-without-message"),
        pytest.param(b"N" + b"\x00" * 16 + b"X", id="numbered-unknown-inner"),
        pytest.param(b"N" + b"\x00" * 16 + b"N" + b"\x00" * 17, id="numbered-in-numbered"),
        pytest.param(b"J", id="json-empty"),
        pytest.param(b"J{not json", id="bad-json"),
        pytest.param(b'J{"type": "x"', id="truncated-json"),
        pytest.param(b"J\xff\xfe\x00", id="not-utf8"),
        pytest.param(b"J[1, 2]", id="json-array"),
        pytest.param(b'J"hangup"', id="json-string"),
        pytest.param(b"Jnull", id="json-null"),
        pytest.param(b'J{"reason": "x"}', id="missing-type"),
        pytest.param(b'J{"type": 5}', id="type-not-a-string"),
        pytest.param(b'J{"type": null}', id="type-null"),
    ],
)
def test_malformed_message_raises(message: bytes) -> None:
    with pytest.raises(MalformedMessage):
        decode(message)
