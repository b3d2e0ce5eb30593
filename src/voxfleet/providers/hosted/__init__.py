"""Providers on the official ``openai`` SDK for a hosted endpoint
(providers/endpoints.py): Azure OpenAI, or any OpenAI-compatible service
(llama.cpp's server, vLLM, OpenAI itself). One module per capability."""

from __future__ import annotations

from typing import Any

from voxfleet.providers.hosted.llm import HostedLLM
from voxfleet.providers.hosted.stt import HostedSTT
from voxfleet.providers.hosted.tts import HostedTTS

HOSTED: dict[str, Any] = {"llm": HostedLLM, "stt": HostedSTT, "tts": HostedTTS}
