"""The monitor's sign-in settings, kept apart from ``settings.py`` so each stays
short: the first admin, session lifetimes, the login rate limit and the token
KEDA reads the scaling signal with. ``Settings`` inherits them."""

from __future__ import annotations

from limits import parse_many
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings

MONITOR_PASSWORD_MIN_LENGTH = 12
SCALING_TOKEN_MIN_LENGTH = 24


class MonitorSettings(BaseSettings):
    monitor_admin_user: str = Field(
        "admin",
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9._@-]+$",
        description="Name of the first monitor admin, created at start when no user exists.",
    )
    monitor_admin_password: SecretStr | None = Field(
        None, description="Password of the first monitor admin (only used while no user exists)."
    )
    session_idle_seconds: int = Field(
        1800, ge=1, description="A monitor sign-in ends after this long without a request."
    )
    session_max_seconds: int = Field(
        43200, ge=60, description="A monitor sign-in ends this long after it began, used or not."
    )
    login_rate_limit: str = Field(
        "5/minute;30/hour",
        description="Sign-in attempts per client address and, separately, per user name "
        "(`limits` notation, several separated by ';').",
    )
    scaling_token: SecretStr | None = Field(
        None,
        description="Bearer token that reads /api/scaling only (for KEDA), not the admin key.",
    )
    trusted_user_header: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9-]+$",
        description="Off by default. A header an authenticating proxy in front of the monitor "
        "sets to the signed-in user (oauth2-proxy: X-Forwarded-Email); only when every request "
        "reaches the monitor through that proxy.",
    )
    trusted_admins: str = Field(
        "",
        description="With trusted_user_header: the users (as the header names them, "
        "comma-separated) who are admins; everyone else the proxy lets in is a viewer.",
    )

    @field_validator("login_rate_limit")
    @classmethod
    def _check_login_rate(cls, value: str) -> str:
        value = value.strip()
        try:
            parse_many(value)
        except ValueError as e:
            raise ValueError(
                f"{value[:80]!r} is not a rate like `5/minute` or `5/minute;30/hour`"
            ) from e
        return value

    @model_validator(mode="after")
    def _check_monitor_secrets(self) -> MonitorSettings:
        password = self.monitor_admin_password
        if password is not None and len(password.get_secret_value()) < MONITOR_PASSWORD_MIN_LENGTH:
            raise ValueError(
                f"monitor_admin_password: must be at least {MONITOR_PASSWORD_MIN_LENGTH} characters"
            )
        token = self.scaling_token
        if token is not None and len(token.get_secret_value()) < SCALING_TOKEN_MIN_LENGTH:
            raise ValueError(
                f"scaling_token: must be at least {SCALING_TOKEN_MIN_LENGTH} characters"
            )
        if self.session_idle_seconds > self.session_max_seconds:
            raise ValueError(
                "session_idle_seconds: must not be longer than session_max_seconds "
                f"({self.session_max_seconds})"
            )
        return self
