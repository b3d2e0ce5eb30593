"""Settings: defaults, VOXFLEET_* variables, secrets from *_FILE, and the checks that
keep a production process from starting on development defaults."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from voxfleet.errors import ConfigError
from voxfleet.settings import DEV_SECRET_KEY, Settings
from voxfleet.settings_files import SECRET_FIELDS

pytestmark = [pytest.mark.unit, pytest.mark.usefixtures("clean_env")]

GOOD_SECRET = "a-production-secret-of-32-chars!"
PG_URL = "postgresql+asyncpg://voxfleet:hunter2-pw@db.internal:5432/voxfleet"


def settings() -> Settings:
    return Settings(_env_file=None)  # type: ignore[call-arg]


def secret_file(tmp_path: Path, content: str) -> Path:
    path = tmp_path / "mounted-secret"
    path.write_text(content, encoding="utf-8")
    return path


def test_defaults() -> None:
    s = settings()
    assert s.env == "dev"
    assert (s.host, s.port) == ("127.0.0.1", 8080)
    assert s.data_dir == Path("var")
    assert s.database_url is None
    assert s.redis_url is None
    assert s.secret_key.get_secret_value() == DEV_SECRET_KEY
    assert s.token_ttl_seconds == 120
    assert s.default_profile == "default"
    assert s.providers == "local"
    assert s.log_level == "INFO"
    assert s.admin_api_key is None
    assert (s.admin_host, s.admin_port) == ("127.0.0.1", 8082)
    assert s.read_token_ttl_seconds == 86400
    assert s.max_body_bytes == 16384
    assert s.call_rate_limit == "20/minute"
    assert s.max_queued_rooms == 50
    assert s.allowed_origins == []
    assert s.forwarded_allow_ips == "127.0.0.1"
    assert s.api_docs is False


def test_prefixed_env_vars_are_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VOXFLEET_ENV", "prod")
    monkeypatch.setenv("VOXFLEET_SECRET_KEY", GOOD_SECRET)
    monkeypatch.setenv("VOXFLEET_PORT", "9090")
    monkeypatch.setenv("VOXFLEET_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("VOXFLEET_AGENT_CAPACITY", "8")
    monkeypatch.setenv("VOXFLEET_REDIS_URL", "rediss://cache:6380/0")
    monkeypatch.setenv("VOXFLEET_LOG_FORMAT", "json")

    s = settings()
    assert s.env == "prod"
    assert s.secret_key.get_secret_value() == GOOD_SECRET
    assert s.port == 9090
    assert s.data_dir == tmp_path
    assert s.agent_capacity == 8
    assert s.redis_url == SecretStr("rediss://cache:6380/0")
    assert s.log_format == "json"


def test_unprefixed_env_vars_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "9999")
    monkeypatch.setenv("SECRET_KEY", "x")
    s = settings()
    assert s.port == 8080
    assert s.secret_key.get_secret_value() == DEV_SECRET_KEY


@pytest.mark.parametrize("field", SECRET_FIELDS)
def test_secret_is_read_from_its_file_and_stripped(
    field: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    value = "value-from-a-mounted-key-vault-secret"
    path = secret_file(tmp_path, f"  {value}\n\n")
    monkeypatch.setenv(f"VOXFLEET_{field.upper()}_FILE", str(path))

    secret = getattr(settings(), field)
    assert isinstance(secret, SecretStr)
    assert secret.get_secret_value() == value


def test_livekit_settings_come_as_files_as_the_chart_mounts_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name, value in {
        "LIVEKIT_URL": "wss://voxfleet.livekit.cloud",
        "LIVEKIT_API_KEY": "APIkey123",
        "LIVEKIT_API_SECRET": "a-secret-of-enough-length-for-livekit",
    }.items():
        path = tmp_path / name
        path.write_text(value + "\n")
        monkeypatch.setenv(f"VOXFLEET_{name}_FILE", str(path))
    monkeypatch.setenv("VOXFLEET_TRANSPORT", "livekit")
    s = settings()
    assert s.livekit_url == "wss://voxfleet.livekit.cloud"
    assert s.livekit_api_key == "APIkey123"
    assert s.livekit_api_secret is not None
    assert s.livekit_api_secret.get_secret_value() == "a-secret-of-enough-length-for-livekit"


def test_livekit_transport_names_what_it_lacks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOXFLEET_TRANSPORT", "livekit")
    monkeypatch.setenv("VOXFLEET_LIVEKIT_API_SECRET", "s")
    with pytest.raises(
        ValidationError, match="transport=livekit needs livekit_url, livekit_api_key"
    ):
        settings()


def test_database_url_file_sets_sqlalchemy_url(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("VOXFLEET_DATABASE_URL_FILE", str(secret_file(tmp_path, PG_URL + "\n")))
    assert settings().sqlalchemy_url == PG_URL


def test_secret_key_file_satisfies_prod(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VOXFLEET_ENV", "prod")
    monkeypatch.setenv("VOXFLEET_SECRET_KEY_FILE", str(secret_file(tmp_path, GOOD_SECRET)))
    assert settings().secret_key.get_secret_value() == GOOD_SECRET


@pytest.mark.parametrize("field", ["secret_key", "database_url"])
def test_var_and_its_file_together_is_an_error_naming_both(
    field: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    var = f"VOXFLEET_{field.upper()}"
    monkeypatch.setenv(var, GOOD_SECRET)
    monkeypatch.setenv(f"{var}_FILE", str(secret_file(tmp_path, GOOD_SECRET)))

    with pytest.raises((ValueError, ConfigError)) as excinfo:
        settings()
    message = str(excinfo.value)
    assert re.search(rf"\b{var}\b(?!_FILE)", message), message
    assert f"{var}_FILE" in message


@pytest.mark.parametrize("kind", ["missing", "directory"])
def test_unreadable_file_is_an_error_naming_the_variable(
    kind: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "no-such-secret" if kind == "missing" else tmp_path
    monkeypatch.setenv("VOXFLEET_SECRET_KEY_FILE", str(path))

    with pytest.raises((ValueError, ConfigError)) as excinfo:
        settings()
    assert "VOXFLEET_SECRET_KEY_FILE" in str(excinfo.value)


def test_secret_file_content_stays_out_of_repr(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("VOXFLEET_DATABASE_URL_FILE", str(secret_file(tmp_path, PG_URL)))
    monkeypatch.setenv("VOXFLEET_SECRET_KEY", GOOD_SECRET)
    text = repr(settings())
    assert "hunter2-pw" not in text
    assert GOOD_SECRET not in text


def test_prod_rejects_the_dev_secret_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOXFLEET_ENV", "prod")
    with pytest.raises(ValidationError, match="secret_key"):
        settings()


def test_prod_rejects_the_dev_secret_given_explicitly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOXFLEET_ENV", "prod")
    monkeypatch.setenv("VOXFLEET_SECRET_KEY", DEV_SECRET_KEY)
    with pytest.raises(ValidationError, match="secret_key"):
        settings()


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_short_secret_is_rejected(env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOXFLEET_ENV", env)
    monkeypatch.setenv("VOXFLEET_SECRET_KEY", "x" * 15)
    with pytest.raises(ValidationError, match="secret_key"):
        settings()


def test_sixteen_character_secret_is_enough(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOXFLEET_ENV", "prod")
    monkeypatch.setenv("VOXFLEET_SECRET_KEY", "x" * 16)
    assert settings().secret_key.get_secret_value() == "x" * 16


def test_sqlalchemy_url_defaults_to_sqlite_in_data_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert settings().sqlalchemy_url == "sqlite+aiosqlite:///var/voxfleet.db"
    monkeypatch.setenv("VOXFLEET_DATA_DIR", str(tmp_path))
    assert settings().sqlalchemy_url == f"sqlite+aiosqlite:///{tmp_path / 'voxfleet.db'}"


def test_database_url_overrides_sqlalchemy_url(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("VOXFLEET_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("VOXFLEET_DATABASE_URL", PG_URL)
    assert settings().sqlalchemy_url == PG_URL


@pytest.mark.parametrize("port", ["0", "65536", "-1", "http"])
def test_invalid_port_is_rejected(port: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOXFLEET_PORT", port)
    with pytest.raises(ValidationError) as excinfo:
        settings()
    assert [e["loc"] for e in excinfo.value.errors()] == [("port",)]


@pytest.mark.parametrize("port", ["1", "65535"])
def test_port_bounds_are_accepted(port: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOXFLEET_PORT", port)
    assert settings().port == int(port)


ADMIN_KEY = "Zq3vN8-kT1pWmR5xY7bC2dF9gH4jL6s"


def test_admin_key_is_read_and_kept_out_of_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOXFLEET_ENV", "prod")
    monkeypatch.setenv("VOXFLEET_SECRET_KEY", GOOD_SECRET)
    monkeypatch.setenv("VOXFLEET_ADMIN_API_KEY", ADMIN_KEY)
    s = settings()
    assert s.admin_api_key == SecretStr(ADMIN_KEY)
    assert ADMIN_KEY not in repr(s)


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_short_admin_key_is_rejected(env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOXFLEET_ENV", env)
    monkeypatch.setenv("VOXFLEET_SECRET_KEY", GOOD_SECRET)
    monkeypatch.setenv("VOXFLEET_ADMIN_API_KEY", ADMIN_KEY[:23])
    with pytest.raises(ValidationError, match="admin_api_key: must be at least 24"):
        settings()


@pytest.mark.parametrize(
    "key",
    [
        "change-me-to-a-long-random-admin-key",
        "an-example-admin-key-for-the-readme",
        "a" * 40,
        "abababababababababababababababab",
        GOOD_SECRET,  # the secret key again
    ],
)
def test_prod_refuses_placeholder_admin_keys(key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOXFLEET_ENV", "prod")
    monkeypatch.setenv("VOXFLEET_SECRET_KEY", GOOD_SECRET)
    monkeypatch.setenv("VOXFLEET_ADMIN_API_KEY", key)
    with pytest.raises(ValidationError, match="admin_api_key: looks like a placeholder"):
        settings()
    monkeypatch.setenv("VOXFLEET_ENV", "dev")
    assert settings().admin_api_key == SecretStr(key)  # dev takes any long enough key


def test_allowed_origins_are_a_comma_separated_list_of_origins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VOXFLEET_ALLOWED_ORIGINS", " https://Talk.example.com , http://a.b:8080,")
    assert settings().allowed_origins == ["https://talk.example.com", "http://a.b:8080"]
    monkeypatch.setenv("VOXFLEET_ALLOWED_ORIGINS", "*")
    assert settings().allowed_origins == ["*"]


@pytest.mark.parametrize("origin", ["talk.example.com", "ftp://a.b", "https://a.b/path"])
def test_an_allowed_origin_must_be_an_origin(origin: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOXFLEET_ALLOWED_ORIGINS", origin)
    with pytest.raises(ValidationError) as excinfo:
        settings()
    assert excinfo.value.errors()[0]["loc"] == ("allowed_origins",)


@pytest.mark.parametrize("rate", ["5/second;20/minute", "100 per hour", "OFF"])
def test_call_rate_limit_takes_limits_notation_or_off(
    rate: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VOXFLEET_CALL_RATE_LIMIT", rate)
    assert settings().call_rate_limit == ("off" if rate == "OFF" else rate)


@pytest.mark.parametrize("rate", ["", "fast", "20/fortnight", "-1/minute"])
def test_a_bad_call_rate_limit_is_rejected(rate: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOXFLEET_CALL_RATE_LIMIT", rate)
    with pytest.raises(ValidationError) as excinfo:
        settings()
    assert excinfo.value.errors()[0]["loc"] == ("call_rate_limit",)


def test_public_origin_is_the_public_urls_origin(monkeypatch: pytest.MonkeyPatch) -> None:
    assert settings().public_origin is None
    monkeypatch.setenv("VOXFLEET_PUBLIC_URL", "https://Talk.example.com/voice/")
    assert settings().public_origin == "https://talk.example.com"


def test_monitor_sign_in_settings_and_their_secret_files(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    s = settings()
    assert s.monitor_admin_user == "admin"
    assert s.monitor_admin_password is None and s.scaling_token is None
    assert (s.session_idle_seconds, s.session_max_seconds) == (1800, 43200)
    assert {"monitor_admin_password", "scaling_token"} <= set(SECRET_FIELDS)
    password = tmp_path / "password"
    password.write_text("first admin password\n", encoding="utf-8")
    monkeypatch.setenv("VOXFLEET_MONITOR_ADMIN_PASSWORD_FILE", str(password))
    monkeypatch.setenv("VOXFLEET_SCALING_TOKEN", "keda-reads-the-scaling-signal")
    s = settings()
    assert s.monitor_admin_password == SecretStr("first admin password")
    assert s.scaling_token == SecretStr("keda-reads-the-scaling-signal")
    assert "first admin password" not in repr(s)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("MONITOR_ADMIN_PASSWORD", "too-short", "monitor_admin_password: must be at least 12"),
        ("SCALING_TOKEN", "short-token", "scaling_token: must be at least 24"),
        ("SESSION_IDLE_SECONDS", "50000", "session_idle_seconds: must not be longer"),
        ("LOGIN_RATE_LIMIT", "often", "'often' is not a rate"),
        ("MONITOR_ADMIN_USER", "has space", "monitor_admin_user"),
    ],
)
def test_bad_monitor_settings_are_refused_naming_them(
    name: str, value: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(f"VOXFLEET_{name}", value)
    with pytest.raises(ValidationError, match=re.escape(message)):
        settings()
