"""The one validated configuration object of a voxfleet process.

Built once at start-up from ``VOXFLEET_*`` environment variables (and an optional
``.env`` file), then passed to whatever needs it. Every secret can also be given as
``VOXFLEET_<NAME>_FILE``: a path whose content is the value, which is how secrets
mounted from Azure Key Vault by the Secrets Store CSI driver arrive.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

ENV_PREFIX = "VOXFLEET_"
DEV_SECRET_KEY = "dev-only-insecure-secret-key-change-me"  # noqa: S105 - the known dev default
SECRET_FIELDS = ("secret_key", "database_url", "redis_url", "redis_password", "llm_api_key")


class FileSecretsSource(PydanticBaseSettingsSource):
    """Reads ``VOXFLEET_<FIELD>_FILE`` for the secret fields."""

    def __init__(self, settings_cls: type[BaseSettings], environ: dict[str, str]) -> None:
        super().__init__(settings_cls)
        self._environ = environ

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name in SECRET_FIELDS:
            file_var = f"{ENV_PREFIX}{name.upper()}_FILE"
            path = self._environ.get(file_var)
            if not path:
                continue
            if f"{ENV_PREFIX}{name.upper()}" in self._environ:
                raise ValueError(f"set either {ENV_PREFIX}{name.upper()} or {file_var}, not both")
            try:
                values[name] = Path(path).read_text(encoding="utf-8").strip()
            except OSError as e:
                raise ValueError(f"{file_var}: cannot read {path!r}: {e.strerror}") from e
        return values


class Settings(BaseSettings):
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

    profiles_file: Path | None = Field(None, description="TOML file of agent profiles.")
    default_profile: str = "default"
    max_call_seconds: int = Field(1800, ge=10)
    agent_capacity: int = Field(4, ge=1, le=64)
    agent_id: str | None = Field(None, description="Default: the host name plus a random tag.")
    drain_timeout_seconds: float = Field(
        25.0, gt=0, description="Keep below Kubernetes' terminationGracePeriodSeconds."
    )
    lease_ttl_seconds: float = Field(1.0, ge=0.3, le=30.0)
    queue_timeout_seconds: float = Field(120.0, gt=0)
    caller_gone_seconds: float = Field(
        30.0,
        ge=3.0,
        description="A room that hears nothing from its caller's edge ends after this.",
    )
    scaling_warm_buffer: int = Field(2, ge=0)
    scaling_min_agents: int = Field(2, ge=0)
    scaling_max_agents: int = Field(50, ge=1)

    providers: Literal["local", "scripted"] = Field(
        "local", description="local: the shipped models; scripted: set timings, for tests."
    )
    stt_threads: int = Field(2, ge=1)
    llm_threads: int = Field(2, ge=1)
    llm_context: int = Field(2048, ge=256)
    llm_api_key: SecretStr | None = None

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

    @model_validator(mode="after")
    def _reject_dev_defaults_in_prod(self) -> Settings:
        if self.env != "dev" and self.secret_key.get_secret_value() == DEV_SECRET_KEY:
            raise ValueError(
                "secret_key: the built-in development key is not allowed when env=prod; "
                "set VOXFLEET_SECRET_KEY or VOXFLEET_SECRET_KEY_FILE"
            )
        if len(self.secret_key.get_secret_value()) < 16:
            raise ValueError("secret_key: must be at least 16 characters")
        return self

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return f"sqlite+aiosqlite:///{self.data_dir / 'voxfleet.db'}"
