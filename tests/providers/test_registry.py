"""Each capability's provider is chosen on its own (VOXFLEET_VAD, _STT, _LLM,
_TTS), loads only when chosen, and a wrong name is refused with what is known."""

from __future__ import annotations

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
        assert type(getattr(providers, other)) is provider_class(other, chosen)


def test_the_default_names_every_capability() -> None:
    settings = _settings(stt="local")
    assert [settings.provider_for(k) for k in KINDS] == [
        "scripted",
        "local",
        "scripted",
        "scripted",
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
