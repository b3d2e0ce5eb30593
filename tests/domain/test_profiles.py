"""Agent profiles: the built-in file loads, a custom file loads, and every mistake in
a file is a ConfigError naming the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from voxfleet.domain.profiles import GenerationSettings, load_profiles
from voxfleet.errors import ConfigError

pytestmark = pytest.mark.unit

CUSTOM = """
[profile.support]
title = "Support line"
greeting = "Support, how can I help?"
system_prompt = "You answer questions about invoices."
voice = "amy"
speaking_rate = 1.2

[profile.support.generation]
temperature = 0.7
max_tokens = 100

[profile.minimal-2]
system_prompt = "Be brief."
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "profiles.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_built_in_profiles_load() -> None:
    profiles = load_profiles(None, "default")
    assert {"default", "barista"} <= set(profiles.names())
    default = profiles.get(None)
    assert default is not None
    assert default.name == "default"
    assert default.greeting.strip()
    assert default.system_prompt.strip()
    barista = profiles.get("barista")
    assert barista is not None
    assert "Bean There" in barista.greeting
    assert profiles.get("no-such-profile") is None


def test_built_in_default_can_be_another_profile() -> None:
    profiles = load_profiles(None, "barista")
    assert profiles.default == "barista"
    chosen = profiles.get(None)
    assert chosen is not None and chosen.name == "barista"


def test_custom_file_loads(tmp_path: Path) -> None:
    profiles = load_profiles(write(tmp_path, CUSTOM), "support")
    assert profiles.names() == ["minimal-2", "support"]
    support = profiles.get("support")
    assert support is not None
    assert support.title == "Support line"
    assert support.greeting == "Support, how can I help?"
    assert support.voice == "amy"
    assert support.speaking_rate == 1.2
    assert support.generation.temperature == 0.7
    assert support.generation.max_tokens == 100
    assert support.generation.top_p == GenerationSettings().top_p  # unset: the default
    minimal = profiles.get("minimal-2")
    assert minimal is not None
    assert minimal.greeting == ""
    assert minimal.generation == GenerationSettings()


@pytest.mark.parametrize(
    ("text", "names"),
    [
        pytest.param("[profile.x\nsystem_prompt = 'hi'\n", "invalid TOML", id="invalid-toml"),
        pytest.param("title = 'no profiles here'\n", "[profile.<name>]", id="no-tables"),
        pytest.param("[profile]\n", "[profile.<name>]", id="empty-profile-table"),
        pytest.param("profile = 'x'\n", "[profile.<name>]", id="profile-not-a-table"),
        pytest.param("[profile]\nx = 'hi'\n", "profile.x", id="entry-not-a-table"),
        pytest.param(
            "[profile.Support]\nsystem_prompt = 'hi'\n", "profile.Support.name", id="uppercase"
        ),
        pytest.param(
            "[profile.x]\ngreeting = 'hi'\n", "profile.x.system_prompt", id="no-system-prompt"
        ),
        pytest.param(
            "[profile.x]\nsystem_prompt = ''\n", "profile.x.system_prompt", id="empty-prompt"
        ),
        pytest.param(
            "[profile.x]\nsystem_prompt = 'hi'\n[profile.x.generation]\ntemperature = 2.5\n",
            "profile.x.generation.temperature",
            id="temperature-range",
        ),
        pytest.param(
            "[profile.x]\nsystem_prompt = 'hi'\n[profile.x.generation]\nmax_tokens = 'many'\n",
            "profile.x.generation.max_tokens",
            id="wrong-type",
        ),
        pytest.param(
            "[profile.x]\nsystem_prompt = 'hi'\nspeaking_rate = 9\n",
            "profile.x.speaking_rate",
            id="speaking-rate-range",
        ),
    ],
)
def test_bad_file_names_the_file_and_the_field(tmp_path: Path, text: str, names: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as excinfo:
        load_profiles(path, "x")
    assert str(path) in excinfo.value.message
    assert names in excinfo.value.message


def test_unknown_default_profile_names_default_profile(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as excinfo:
        load_profiles(write(tmp_path, CUSTOM), "nope")
    assert "default_profile" in excinfo.value.message
    assert "nope" in excinfo.value.message


def test_unknown_default_for_built_in_profiles_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="default_profile"):
        load_profiles(None, "nope")


def test_missing_file_names_profiles_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(ConfigError) as excinfo:
        load_profiles(path, "default")
    assert "profiles_file" in excinfo.value.message
    assert str(path) in excinfo.value.message


def test_a_misspelt_key_is_an_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text('[profile.x]\nsystem_prompt = "Hi"\n[profile.x.generation]\ntemprature = 3.5\n')
    with pytest.raises(ConfigError, match="temprature"):
        load_profiles(path, "x")
