"""Piper on the model scheduler: phonemized in one job, spoken sentence by
sentence in others, byte for byte the audio Piper's own synthesize() makes;
and two rooms' sentences may be spoken at once."""

from __future__ import annotations

import asyncio

import pytest

from voxfleet.providers.local.scheduler import ModelScheduler
from voxfleet.providers.local.tts import PiperTTS

pytestmark = pytest.mark.integration
TEXT = "Good morning. The capital of France is Paris, a city of art! Anything else?"


async def test_scheduled_synthesis_is_pipers_own_audio_and_rooms_overlap() -> None:
    tts = PiperTTS(models=ModelScheduler(2, "test"))
    # Piper samples noise inside its model: without it the audio is repeatable.
    tts._voice.config.noise_scale = tts._voice.config.noise_w_scale = 0.0
    expected = tts.render(TEXT, 1.1)
    assert tts.render(TEXT, 1.1) == expected
    assert await tts.synthesize(TEXT, 1.1) == expected
    both = await asyncio.gather(tts.synthesize(TEXT, 1.1), tts.synthesize("Hello there.", 1.0))
    assert both == [expected, tts.render("Hello there.", 1.0)]
