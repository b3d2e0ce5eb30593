"""Speech on an endpoint's ``tts`` model, streamed: raw 24 kHz PCM16 (the
``pcm`` response format), read as it arrives. The first audio must come within
``first_audio_seconds`` of the request; bytes that are not audio (an empty
chunk) do not count, and the timer is not restarted by anything."""

from __future__ import annotations

import asyncio

from openai import AsyncOpenAI

from voxfleet.errors import ProviderTimeout
from voxfleet.providers.base import TTS, Capabilities
from voxfleet.providers.endpoints import Endpoint
from voxfleet.providers.hosted.client import sdk_errors

PCM_RATE = 24000  # the service's "pcm" format: 24 kHz, 16-bit little-endian, mono


class HostedTTS(TTS):
    capabilities = Capabilities(streaming=True, sample_rates=(PCM_RATE,))
    sample_rate = PCM_RATE

    def __init__(self, endpoint: Endpoint, client: AsyncOpenAI) -> None:
        self.name = endpoint.name
        self._model = endpoint.model("tts")
        self._voice = endpoint.voice
        self._client = client
        self.first_audio_seconds = endpoint.first_audio_seconds
        self.timeout = endpoint.request_seconds
        self.attempts = endpoint.attempts

    async def close(self) -> None:
        await self._client.close()  # shared by the endpoint's providers; closing twice is fine

    async def _synthesize(self, text: str, rate: float) -> bytes:
        parts: list[bytes] = []
        try:
            with sdk_errors(self.name, "speech"):
                async with asyncio.timeout(self.first_audio_seconds) as first_audio:
                    async with self._client.audio.speech.with_streaming_response.create(
                        model=self._model,
                        voice=self._voice,
                        input=text,
                        response_format="pcm",
                        speed=rate,
                    ) as response:
                        async for chunk in response.iter_bytes():
                            if chunk and not parts:
                                first_audio.reschedule(None)  # the rest has the request's deadline
                            if chunk:
                                parts.append(chunk)
        except TimeoutError as e:
            raise ProviderTimeout(
                f"{self.name}: no audio within {self.first_audio_seconds}s"
            ) from e
        pcm = b"".join(parts)
        return pcm[: len(pcm) // 2 * 2]
