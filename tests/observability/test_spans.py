"""A reply's record of its provider calls: each timed stage, and an error
blamed on the stage it came from, not on the one around it."""

from __future__ import annotations

import itertools

import pytest

from voxfleet.errors import ProviderTimeout
from voxfleet.observability.spans import ReplyRecord

pytestmark = pytest.mark.unit


def test_an_error_is_blamed_on_the_innermost_stage() -> None:
    ticks = itertools.count()
    record = ReplyRecord(created_at=0.0)

    def clock() -> float:
        return float(next(ticks))

    with record.timing("stt", "a", "", clock):
        pass
    with (
        pytest.raises(ProviderTimeout),
        record.timing("llm", "b", "m", clock),
        record.timing("tts", "c", "", clock),
    ):
        raise ProviderTimeout("c: synthesis took over 5s")
    stt, llm, tts = record.stages
    assert (stt.start, stt.end, stt.error) == (0.0, 1.0, "")
    assert (tts.kind, tts.error) == ("tts", "provider_timeout")
    assert llm.error == ""  # the LLM streamed fine: the voice failed
    assert llm.start < tts.start < tts.end < llm.end
