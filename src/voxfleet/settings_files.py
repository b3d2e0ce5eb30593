"""Secrets given as files: ``VOXFLEET_<NAME>_FILE`` is a path whose content is
the value (how Azure Key Vault secrets arrive through the Secrets Store CSI
driver), for the fields in FILE_FIELDS."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

ENV_PREFIX = "VOXFLEET_"
SECRET_FIELDS = (
    "secret_key",
    "admin_api_key",
    "database_url",
    "redis_url",
    "redis_password",
    "livekit_api_secret",
    "monitor_admin_password",
    "scaling_token",
)
# Not secret, but kept beside their secret in Key Vault and mounted the same way.
FILE_FIELDS = (*SECRET_FIELDS, "livekit_url", "livekit_api_key")


class FileSecretsSource(PydanticBaseSettingsSource):
    """Reads ``VOXFLEET_<FIELD>_FILE`` for the fields in FILE_FIELDS."""

    def __init__(self, settings_cls: type[BaseSettings], environ: dict[str, str]) -> None:
        super().__init__(settings_cls)
        self._environ = environ

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        values: dict[str, object] = {}
        for name in FILE_FIELDS:
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
