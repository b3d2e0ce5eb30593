"""The client protocol's types: what a client may send is parsed, or refused
with the documented error code naming what was wrong."""

from __future__ import annotations

import json

import pytest

from voxfleet.errors import ProtocolError
from voxfleet.messages.client import End, Ready, Transcript, parse_client_message

pytestmark = pytest.mark.unit


def test_end_is_the_client_message() -> None:
    assert parse_client_message('{"type": "end"}') == End()
    assert parse_client_message('{"type": "end", "note": "a newer client"}') == End()


@pytest.mark.parametrize(
    ("text", "code", "says"),
    [
        ("{nope", "invalid_json", "not JSON"),
        ('["end"]', "invalid_json", "object"),
        ('"end"', "invalid_json", "object"),
        ('{"kind": "end"}', "invalid_json", "'type'"),
        ('{"type": 5}', "invalid_json", "'type'"),
        ('{"type": "dance"}', "unknown_type", "'dance'"),
        ('{"type": "' + "x" * 500 + '"}', "unknown_type", "x" * 64),
        ("[" * 3000 + "]" * 3000, "invalid_json", "not JSON"),
        ('{"n": ' + "9" * 5000 + "}", "invalid_json", "not JSON"),
    ],
)
def test_bad_client_messages_name_what_is_wrong(text: str, code: str, says: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        parse_client_message(text)
    assert caught.value.code == code
    assert says in caught.value.message
    assert len(caught.value.message) < 200


def test_server_messages_leave_out_what_is_not_set() -> None:
    caption = Transcript(role="user", text="hi", final=False, seq=1)
    assert json.loads(caption.to_json()) == {
        "type": "transcript",
        "role": "user",
        "text": "hi",
        "final": False,
        "seq": 1,
    }
    ready = Ready(
        call_id="c_x", sample_rate=22050, input_sample_rate=16000, max_frame_ms=200, wait_ms=1.5
    )
    assert json.loads(ready.to_json())["type"] == "ready"
