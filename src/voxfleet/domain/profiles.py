"""Agent profiles: who the agent is (prompt, greeting, voice, generation settings).

Profiles come from a TOML file; the built-in one ships with the package.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from voxfleet.errors import ConfigError
from voxfleet.tables import named_tables


class GenerationSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    temperature: float = Field(0.3, ge=0.0, le=2.0)
    top_p: float = Field(0.9, gt=0.0, le=1.0)
    max_tokens: int = Field(60, ge=1, le=1024)
    repeat_penalty: float = Field(1.1, ge=1.0, le=2.0)
    history_turns: int = Field(8, ge=0, le=64)


class Snippet(BaseModel):
    """One piece of what the agent knows, for its lookup tool."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=200)
    text: str = Field(min_length=1, max_length=4000)


ToolName = Literal["end_call", "lookup"]


class Profile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")
    title: str = ""
    system_prompt: str = Field(min_length=1)
    greeting: str = ""
    voice: str = "joe"
    speaking_rate: float = Field(1.0, ge=0.5, le=2.0)
    generation: GenerationSettings = Field(default_factory=GenerationSettings)
    # Said at once, from audio synthesized at start-up, when a provider fails
    # mid-reply (the answer follows from the next provider of the chain) ...
    apology: str = Field("Sorry, one moment.", min_length=1, max_length=200)
    # ... and when every provider of the chain failed.
    unavailable: str = Field(
        "Sorry, I can't answer that right now. Please say it again in a moment.",
        min_length=1,
        max_length=200,
    )
    # Tools the model may call (with a provider that can call tools): end_call
    # hangs up after the reply; lookup searches the knowledge snippets.
    tools: list[ToolName] = Field(default_factory=list)
    knowledge: list[Snippet] = Field(default_factory=list, max_length=500)

    @model_validator(mode="after")
    def _lookup_needs_knowledge(self) -> Profile:
        if "lookup" in self.tools and not self.knowledge:
            raise ValueError(
                "the lookup tool needs knowledge snippets ([[profile.<name>.knowledge]])"
            )
        return self


class Profiles:
    def __init__(self, profiles: dict[str, Profile], default: str) -> None:
        if default not in profiles:
            raise ConfigError(f"default_profile: no profile named {default!r}")
        self._profiles = profiles
        self.default = default

    def get(self, name: str | None) -> Profile | None:
        return self._profiles.get(name or self.default)

    def names(self) -> list[str]:
        return sorted(self._profiles)

    def phrases(self) -> set[str]:
        """What every profile may say without a provider: synthesized at start-up."""
        return {text for p in self._profiles.values() for text in (p.apology, p.unavailable)}


def parse_profiles(text: str, source: str) -> dict[str, Profile]:
    return named_tables(text, source, "profile", Profile)


def load_profiles(path: Path | None, default: str) -> Profiles:
    """Profiles from ``path``, or the built-in ones when ``path`` is None."""
    if path is None:
        text = files("voxfleet").joinpath("profiles.toml").read_text(encoding="utf-8")
        return Profiles(parse_profiles(text, "built-in profiles.toml"), default)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"profiles_file: cannot read {path}: {e.strerror}") from e
    return Profiles(parse_profiles(text, str(path)), default)
