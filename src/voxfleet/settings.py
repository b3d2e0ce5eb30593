"""The one validated configuration object of a voxfleet process.

Built once at start-up from ``VOXFLEET_*`` environment variables (and an optional
``.env`` file), then passed to whatever needs it. Every secret can also be given as
``VOXFLEET_<NAME>_FILE``: a path whose content is the value, which is how secrets
mounted from Azure Key Vault by the Secrets Store CSI driver arrive.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from limits import parse_many
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from voxfleet.errors import ConfigError
from voxfleet.providers.endpoints import load_endpoints
from voxfleet.providers.registry import KINDS, check_chain
from voxfleet.settings_files import ENV_PREFIX, FileSecretsSource
from voxfleet.settings_monitor import MonitorSettings

DEV_SECRET_KEY = "dev-only-insecure-secret-key-change-me"  # noqa: S105 - the known dev default
ADMIN_KEY_MIN_LENGTH = 24
# Words that mark a value copied from an example rather than generated.
PLACEHOLDER_WORDS = ("change", "example", "dev-only", "insecure", "placeholder", "password")


class Settings(MonitorSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=".env", extra="ignore", validate_default=True
    )

    env: Literal["dev", "prod"] = "dev"
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    public_url: str | None = Field(
        None, description="Base URL callers reach (https://talk.example.com); media_url uses it."
    )
    data_dir: Path = Path("var")
    database_url: SecretStr | None = Field(
        None, description="SQLAlchemy async URL; default: a SQLite file in data_dir."
    )
    redis_url: SecretStr | None = Field(
        None, description="redis:// or rediss:// (TLS); unset: in-process bus and dispatch."
    )
    redis_password: SecretStr | None = None
    secret_key: SecretStr = SecretStr(DEV_SECRET_KEY)
    token_ttl_seconds: int = Field(120, ge=5, le=3600)
    read_token_ttl_seconds: int = Field(
        86400, ge=60, description="How long a call's creator may read it with its read_token."
    )
    admin_api_key: SecretStr | None = Field(
        None,
        description="Bearer key of the admin API (monitor routes, any call's record). "
        "Unset in dev: generated into data_dir/admin-api-key.",
    )
    admin_host: str = Field("127.0.0.1", description="`voxfleet up`: the admin listener's address.")
    admin_port: int = Field(8082, ge=1, le=65535)

    max_body_bytes: int = Field(16384, ge=1024, le=1 << 20)
    call_rate_limit: str = Field(
        "20/minute",
        description="Calls one client may create: `limits` notation, several separated by ';' "
        "(`5/second;20/minute`), or `off`.",
    )
    max_queued_rooms: int = Field(50, ge=1, description="New calls get 503 beyond this queue.")
    allowed_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Origins allowed to open media sockets, comma-separated, or `*`. "
        "Empty: the public URL's origin, else the socket's own host (same-origin).",
    )
    forwarded_allow_ips: str = Field(
        "127.0.0.1",
        description="Proxies trusted to set X-Forwarded-For/-Proto (uvicorn's "
        "forwarded_allow_ips): comma-separated addresses or networks, or `*`.",
    )
    api_docs: bool = Field(False, description="Serve /docs and /redoc (they load a CDN script).")

    profiles_file: Path | None = Field(None, description="TOML file of agent profiles.")
    default_profile: str = "default"
    max_call_seconds: int = Field(1800, ge=10)
    agent_capacity: int = Field(4, ge=1, le=64)
    agent_max_model_load: float = Field(
        0.8,
        gt=0.0,
        le=1.0,
        description="An agent with local models takes no new room (beyond its first) while "
        "they were busy this share of the last 10 s: the rest of its capacity waits for "
        "another agent, or for the load to fall.",
    )
    agent_id: str | None = Field(None, description="Default: the host name plus a random tag.")
    pod_name: str | None = Field(
        None, description="This pod's name (Kubernetes downward API): keeps its deletion cost."
    )
    pod_namespace: str | None = Field(None, description="This pod's namespace.")
    drain_timeout_seconds: float = Field(
        25.0, gt=0, description="Keep below Kubernetes' terminationGracePeriodSeconds."
    )
    lease_ttl_seconds: float = Field(1.0, ge=0.3, le=30.0)
    queue_timeout_seconds: float = Field(120.0, gt=0)
    resume_window_seconds: float = Field(
        15.0,
        ge=1.0,
        description="A caller whose socket dropped may re-open it (resume_url) this long.",
    )
    caller_gone_seconds: float = Field(
        20.0,
        ge=3.0,
        description="A room that hears nothing from any edge ends after this; keep it above "
        "the resume window.",
    )
    scaling_warm_buffer: int = Field(2, ge=0)
    scaling_min_agents: int = Field(2, ge=0)
    scaling_max_agents: int = Field(50, ge=1)

    providers: str = Field(
        "local",
        description="The provider of every capability not named on its own "
        "(local: the shipped models; scripted: set timings, for tests).",
    )
    vad: str | None = Field(None, description="Voice activity detection provider.")
    stt: str | None = Field(
        None, description="Speech-to-text provider, or a fallback chain: names separated by commas."
    )
    llm: str | None = Field(None, description="Language model provider, or a fallback chain.")
    tts: str | None = Field(None, description="Text-to-speech provider, or a fallback chain.")
    endpoints_file: Path | None = Field(
        None, description="TOML file of hosted endpoints (Azure OpenAI, OpenAI-compatible)."
    )
    breaker_failures: int = Field(
        3, ge=1, description="Failures in a row that open a provider's circuit breaker."
    )
    breaker_cooldown_seconds: float = Field(
        10.0, gt=0, description="How long an open breaker skips its provider before a probe."
    )
    transport: Literal["websocket", "livekit"] = Field(
        "websocket",
        description="How callers' media travels: the landing's WebSocket edge, or LiveKit rooms.",
    )
    livekit_url: str | None = Field(
        None, description="The LiveKit server (wss://…), for transport=livekit."
    )
    livekit_api_key: str | None = Field(None, description="LiveKit API key (its name).")
    livekit_api_secret: SecretStr | None = Field(None, description="LiveKit API secret.")
    livekit_token_ttl_seconds: int = Field(
        120, ge=10, le=3600, description="How long a caller's LiveKit join token admits a join."
    )
    livekit_webhook_max_age_seconds: int = Field(
        300, ge=10, description="Older LiveKit webhooks (by their created_at) are refused."
    )
    model_workers: int = Field(
        0,
        ge=0,
        le=64,
        description="Threads that run the local models' jobs at once, most urgent first "
        "(0: one per core the process may use).",
    )
    stt_threads: int = Field(1, ge=1, description="CPU threads of one Whisper job.")
    llm_threads: int = Field(1, ge=1, description="CPU threads of one llama.cpp step.")
    tts_threads: int = Field(1, ge=1, description="CPU threads of one Piper synthesis.")
    llm_context: int = Field(2048, ge=256)
    llm_sequences: int = Field(
        4,
        ge=1,
        le=64,
        description="Conversations the local LLM keeps evaluated at once (one llama.cpp "
        "context each, about 60 MiB at the default context size); more rooms than this "
        "generate in turn.",
    )
    llm_seed: int | None = Field(
        None,
        description="The local LLM draws each reply's tokens with a generator seeded from "
        "this and the prompt, so the same conversation gets the same reply (benchmarks: "
        "runs that compare CPU per call say the same things). Unset: a fresh draw each reply.",
    )
    llm_batching: bool = Field(
        False,
        description="The local LLM steps every room's generation together, one llama.cpp "
        "decode per token of all rooms (one context, a sequence per conversation), "
        "instead of a decode per room's token.",
    )

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console"] = "console"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            FileSecretsSource(settings_cls, dict(os.environ)),
            env_settings,
            dotenv_settings,
        )

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("allowed_origins")
    @classmethod
    def _check_origins(cls, value: list[str]) -> list[str]:
        out = []
        for origin in value:
            if origin == "*":
                out.append(origin)
                continue
            parts = urlsplit(origin)
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.path.strip("/"):
                raise ValueError(f"{origin[:80]!r} is not an origin like https://talk.example.com")
            out.append(f"{parts.scheme}://{parts.netloc}".lower())
        return out

    @field_validator("call_rate_limit")
    @classmethod
    def _check_rate_limit(cls, value: str) -> str:
        value = value.strip()
        if value.lower() == "off":
            return "off"
        try:
            parse_many(value)
        except ValueError as e:
            raise ValueError(
                f"{value[:80]!r} is not a rate like `20/minute` or `5/second;20/minute`, nor `off`"
            ) from e
        return value

    @model_validator(mode="after")
    def _reject_dev_defaults_in_prod(self) -> Settings:
        secret = self.secret_key.get_secret_value()
        if self.env != "dev" and secret == DEV_SECRET_KEY:
            raise ValueError(
                "secret_key: the built-in development key is not allowed when env=prod; "
                "set VOXFLEET_SECRET_KEY or VOXFLEET_SECRET_KEY_FILE"
            )
        if len(secret) < 16:
            raise ValueError("secret_key: must be at least 16 characters")
        if self.admin_api_key is not None:
            self._check_admin_key(self.admin_api_key.get_secret_value(), secret)
        if self.caller_gone_seconds <= self.resume_window_seconds:
            raise ValueError(
                "caller_gone_seconds: must be longer than resume_window_seconds "
                f"({self.resume_window_seconds}), or rooms end while their caller may resume"
            )
        if self.transport == "livekit":
            missing = [
                name
                for name in ("livekit_url", "livekit_api_key", "livekit_api_secret")
                if getattr(self, name) is None
            ]
            if missing:
                raise ValueError(f"transport=livekit needs {', '.join(missing)}")
        try:
            endpoints = load_endpoints(self.endpoints_file)
        except ConfigError as e:
            raise ValueError(e.message) from e
        for kind in KINDS:
            try:
                check_chain(kind, self.chain_for(kind), endpoints)
            except ConfigError as e:
                field = kind if getattr(self, kind) is not None else "providers"
                raise ValueError(f"{field}: {e.message}") from e
        return self

    def chain_for(self, kind: str) -> list[str]:
        """The providers named for capability ``kind`` (vad, stt, llm, tts), in
        the order they are tried."""
        named: str | None = getattr(self, kind)
        value = named if named is not None else self.providers
        return [name.strip() for name in value.split(",") if name.strip()]

    def _check_admin_key(self, key: str, secret_key: str) -> None:
        if len(key) < ADMIN_KEY_MIN_LENGTH:
            raise ValueError(f"admin_api_key: must be at least {ADMIN_KEY_MIN_LENGTH} characters")
        if self.env == "dev":
            return
        lowered = key.lower()
        if (
            key == secret_key
            or len(set(key)) < 10
            or any(word in lowered for word in PLACEHOLDER_WORDS)
        ):
            raise ValueError(
                "admin_api_key: looks like a placeholder (or repeats secret_key), which is not "
                "allowed when env=prod; generate one, e.g. "
                "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
            )

    @property
    def public_origin(self) -> str | None:
        """The origin (scheme://host[:port]) of ``public_url``, if set."""
        if not self.public_url:
            return None
        parts = urlsplit(self.public_url)
        return f"{parts.scheme}://{parts.netloc}".lower()

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return f"sqlite+aiosqlite:///{self.data_dir / 'voxfleet.db'}"
