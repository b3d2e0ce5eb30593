"""Each capability's provider is chosen on its own (VOXFLEET_VAD, _STT, _LLM,
_TTS), loads only when chosen, and a wrong name is refused with what is known."""

from __future__ import annotations

from pathlib import Path

import pytest

from voxfleet.errors import ConfigError
from voxfleet.providers.registry import KINDS, REGISTRY, build_providers, provider_class
from voxfleet.settings import Settings

pytestmark = pytest.mark.integration  # loads the real local models, one at a time


def _settings(**overrides: str) -> Settings:
    return Settings(_env_file=None, providers="scripted", **overrides)  # type: ignore[call-arg]


@pytest.mark.parametrize("kind", KINDS)
def test_one_capability_switches_alone(kind: str) -> None:
    providers = build_providers(_settings(**{kind: "local"}))
    for other in KINDS:
        chosen = "local" if other == kind else "scripted"
        served = getattr(providers, other)
        loaded = served if other == "vad" else served.members[0]  # the others are chains
        assert type(loaded) is provider_class(other, chosen)


def test_the_default_names_every_capability() -> None:
    settings = _settings(stt="local")
    assert [settings.chain_for(k) for k in KINDS] == [
        ["scripted"],
        ["local"],
        ["scripted"],
        ["scripted"],
    ]


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        ({"llm": "azure"}, "llm: no llm provider named 'azure'; known: local, scripted"),
        ({"providers": "cloud"}, "providers: no vad provider named 'cloud'"),
    ],
)
def test_an_unknown_provider_is_refused_by_name(overrides: dict[str, str], says: str) -> None:
    with pytest.raises(ValueError, match=says):
        Settings(_env_file=None, **overrides)  # type: ignore[arg-type]


def test_a_provider_that_cannot_load_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(REGISTRY["tts"], "local", "voxfleet.providers.not_installed:PiperTTS")
    with pytest.raises(ConfigError, match=r"tts: provider 'local' cannot load .*voxfleet\[local\]"):
        provider_class("tts", "local")


ENDPOINTS = """
[endpoint.azure-east]
api = "azure"
url = "https://east.example.openai.azure.com"
api_version = "2024-10-21"
auth = "none"
llm = "gpt-4o-mini"
"""


async def test_a_chain_names_endpoints_and_built_in_providers(tmp_path: Path) -> None:
    from voxfleet.providers.hosted.llm import HostedLLM
    from voxfleet.providers.scripted import ScriptedLLM

    endpoints = tmp_path / "endpoints.toml"
    endpoints.write_text(ENDPOINTS)
    settings = _settings(llm=" azure-east , scripted", endpoints_file=str(endpoints))
    assert settings.chain_for("llm") == ["azure-east", "scripted"]
    providers = build_providers(settings)
    try:
        assert [type(p) for p in providers.llm.members] == [HostedLLM, ScriptedLLM]
        assert providers.llm.name == "azure-east+scripted-llm"
    finally:
        await providers.close()


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        (
            {"llm": "azure-west,scripted"},
            "llm: no llm provider named 'azure-west'; known: local, scripted, azure-east",
        ),
        (
            {"stt": "azure-east"},
            "stt: no stt provider named 'azure-east'; known: local, scripted \\[",
        ),
        ({"vad": "scripted,local"}, "vad: voice activity detection runs in-process"),
        ({"llm": "scripted,scripted"}, "llm: a llm provider is named twice"),
        ({"llm": " , "}, "llm: name at least one llm provider"),
    ],
)
def test_a_wrong_chain_is_refused_by_name(
    tmp_path: Path, overrides: dict[str, str], says: str
) -> None:
    endpoints = tmp_path / "endpoints.toml"
    endpoints.write_text(ENDPOINTS)
    with pytest.raises(ValueError, match=says):
        _settings(endpoints_file=str(endpoints), **overrides)


def test_a_wrong_endpoints_file_is_refused_at_start_up(tmp_path: Path) -> None:
    endpoints = tmp_path / "endpoints.toml"
    endpoints.write_text('[endpoint.x]\nurl = "https://x"\nllm = "m"\n')
    with pytest.raises(ValueError, match=r"endpoint\.x: api_key_file: required when auth = 'key'"):
        _settings(endpoints_file=str(endpoints))
