"""Local providers: models shipped inside PyPI packages, run on this machine's CPU.
Nothing is downloaded at run time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from voxfleet.observability.logging import get_logger
from voxfleet.providers.base import Providers
from voxfleet.settings import Settings

log = get_logger(__name__)
T = TypeVar("T")


def load_local_providers(settings: Settings) -> Providers:
    """Load every local model once, logging each one's load time."""
    from voxfleet.providers.local.llm import LlamaLLM
    from voxfleet.providers.local.stt import WhisperSTT
    from voxfleet.providers.local.tts import PiperTTS
    from voxfleet.providers.local.vad import SileroVAD

    def timed(what: str, build: Callable[[], T]) -> T:
        started = time.perf_counter()
        model = build()
        log.info("model loaded", model=what, seconds=round(time.perf_counter() - started, 2))
        return model

    return Providers(
        vad=timed("silero-vad-v6", SileroVAD),
        stt=timed("whisper-tiny.en", lambda: WhisperSTT(settings.stt_threads)),
        llm=timed(
            "smollm2-135m-instruct", lambda: LlamaLLM(settings.llm_threads, settings.llm_context)
        ),
        tts=timed("piper-joe-medium", PiperTTS),
    )
