"""Transcription on an endpoint's ``stt`` model (Whisper or gpt-4o-transcribe
deployments): the utterance goes up as a 16 kHz mono WAV."""

from __future__ import annotations

import io
import wave

from openai import AsyncOpenAI

from voxfleet.audio import INPUT_RATE, Float32Array, float_to_pcm16
from voxfleet.providers.base import STT
from voxfleet.providers.endpoints import Endpoint
from voxfleet.providers.hosted.client import sdk_errors


def wav_bytes(audio: Float32Array, rate: int = INPUT_RATE) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(float_to_pcm16(audio))
    return buffer.getvalue()


class HostedSTT(STT):
    def __init__(self, endpoint: Endpoint, client: AsyncOpenAI) -> None:
        self.name = endpoint.name
        self._model = endpoint.model("stt")
        self._client = client
        self.timeout = endpoint.transcription_seconds
        self.per_audio_second = endpoint.transcription_per_audio_second
        self.attempts = endpoint.attempts

    async def close(self) -> None:
        await self._client.close()  # shared by the endpoint's providers; closing twice is fine

    async def _transcribe(self, audio: Float32Array) -> str:
        with sdk_errors(self.name, "transcription"):
            result = await self._client.audio.transcriptions.create(
                model=self._model,
                file=("speech.wav", wav_bytes(audio), "audio/wav"),
                response_format="json",
            )
        return result.text
