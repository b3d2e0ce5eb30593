"""Hosted endpoints (Azure OpenAI, or any OpenAI-compatible service) named in
a TOML file (``VOXFLEET_ENDPOINTS_FILE``), so a capability's chain can name
them beside the built-in providers: ``VOXFLEET_LLM=azure-east,azure-west,local``.

    [endpoint.azure-east]
    api = "azure"                                  # or "openai": any compatible server
    url = "https://voxfleet-east.openai.azure.com"
    api_version = "2024-10-21"
    auth = "entra"                                 # or "key" (api_key_file), or "none"
    llm = "gpt-4o-mini"                            # a deployment (azure) or a model name
    stt = "whisper"
    tts = "tts"
    voice = "alloy"

Deadlines are part of an endpoint: a hosted service that accepted a request
and says nothing within ``first_token_seconds`` (or ``first_audio_seconds``,
or ``transcription_seconds``) has failed, and the chain moves on. The file
holds no secret: a key is read from ``api_key_file`` (a mounted secret)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from voxfleet.errors import ConfigError
from voxfleet.tables import named_tables

NAME = r"^[a-z0-9][a-z0-9_-]{0,62}$"


class Endpoint(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME)
    api: Literal["openai", "azure"] = "openai"
    url: str = Field(pattern=r"^https?://[^\s/]+(/\S*)?$")
    api_version: str | None = None
    auth: Literal["key", "entra", "none"] = "key"
    api_key_file: Path | None = None
    llm: str | None = None
    stt: str | None = None
    tts: str | None = None
    voice: str = "alloy"
    tools: bool = True  # its LLM may call tools
    first_token_seconds: float = Field(1.0, gt=0, le=60)
    stall_seconds: float = Field(2.0, gt=0, le=60)
    transcription_seconds: float = Field(1.0, gt=0, le=60)
    transcription_per_audio_second: float = Field(0.1, ge=0, le=10)
    first_audio_seconds: float = Field(1.0, gt=0, le=60)
    request_seconds: float = Field(15.0, gt=0, le=300)
    attempts: int = Field(2, ge=1, le=5)

    @model_validator(mode="after")
    def _consistent(self) -> Endpoint:
        if self.api == "azure" and not self.api_version:
            raise ValueError("api_version: required for an azure endpoint")
        if self.auth == "key" and self.api_key_file is None:
            raise ValueError("api_key_file: required when auth = 'key'")
        if self.auth == "entra" and self.api != "azure":
            raise ValueError("auth: 'entra' needs api = 'azure'")
        if not (self.llm or self.stt or self.tts):
            raise ValueError("name at least one of llm, stt, tts (a model or deployment)")
        return self

    def serves(self, kind: str) -> bool:
        return kind in ("llm", "stt", "tts") and bool(getattr(self, kind))

    def model(self, kind: str) -> str:
        """The model (or Azure deployment) that serves ``kind`` here."""
        name = getattr(self, kind) if kind in ("llm", "stt", "tts") else None
        if not name:
            raise ConfigError(f"endpoint {self.name}: no {kind} model is set")
        return str(name)


def parse_endpoints(text: str, source: str) -> dict[str, Endpoint]:
    return named_tables(text, source, "endpoint", Endpoint, required=False)


def load_endpoints(path: Path | None) -> dict[str, Endpoint]:
    """The endpoints of ``path``; none when no file is set."""
    if path is None:
        return {}
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"endpoints_file: cannot read {path}: {e.strerror}") from e
    return parse_endpoints(text, str(path))
