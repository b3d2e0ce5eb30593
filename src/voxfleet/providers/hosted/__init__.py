"""Providers on the official ``openai`` SDK for a hosted endpoint
(providers/endpoints.py): Azure OpenAI, or any OpenAI-compatible service
(llama.cpp's server, vLLM, OpenAI itself). One module per capability."""

from __future__ import annotations

from collections.abc import Callable

from openai import AsyncOpenAI

from voxfleet.providers.base import Provider
from voxfleet.providers.endpoints import Endpoint
from voxfleet.providers.hosted.llm import HostedLLM
from voxfleet.providers.hosted.stt import HostedSTT
from voxfleet.providers.hosted.tts import HostedTTS

HOSTED: dict[str, Callable[[Endpoint, AsyncOpenAI], Provider]] = {
    "llm": HostedLLM,
    "stt": HostedSTT,
    "tts": HostedTTS,
}
