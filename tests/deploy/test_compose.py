"""The single-VM Compose stack: valid against the Compose Specification's JSON
schema (tests/deploy/schemas/compose-spec.json), and the promises of
docs/deploy-compose.md: secrets only as files, limits and health checks on
every long-running service, the migration as a one-shot the app waits for."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.deploy.support import ROOT, SCHEMAS
from voxfleet.providers.endpoints import parse_endpoints
from voxfleet.settings import Settings

pytestmark = pytest.mark.deploy

COMPOSE_DIR = ROOT / "deploy" / "compose"
APP_SERVICES = ("landing", "monitor", "agent")
SECRET_SETTINGS = re.compile(
    r"^VOXFLEET_(SECRET_KEY|DATABASE_URL|REDIS_URL|REDIS_PASSWORD|ADMIN_API_KEY)$"
)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((COMPOSE_DIR / "compose.yaml").read_text())
    return loaded


def _validator() -> jsonschema.Draft201909Validator:
    schema = json.loads((SCHEMAS / "compose-spec.json").read_text())
    return jsonschema.Draft201909Validator(schema)


def test_matches_the_compose_specification(compose: dict[str, Any]) -> None:
    _validator().validate(compose)


def test_the_schema_catches_a_misspelt_key(compose: dict[str, Any]) -> None:
    broken = json.loads(json.dumps(compose))
    broken["services"]["landing"]["healthchek"] = broken["services"]["landing"].pop("healthcheck")
    errors = [e.message for e in _validator().iter_errors(broken)]
    assert any("'healthchek' does not match any of the regexes" in m for m in errors), errors


def test_the_stack_has_every_part(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {
        "postgres",
        "redis",
        "livekit",
        "migrate",
        *APP_SERVICES,
    }
    assert compose["configs"]["livekit"]["file"] == "./livekit.yaml"
    assert (COMPOSE_DIR / "livekit.yaml").exists()


def test_secrets_are_files_never_environment(compose: dict[str, Any]) -> None:
    declared = compose["secrets"]
    for name, service in compose["services"].items():
        environment = service.get("environment", {})
        assert isinstance(environment, dict), name
        for key, value in environment.items():
            assert not SECRET_SETTINGS.match(key), f"{name}: {key} carries a secret value"
            if key.endswith("_FILE"):
                secret = value.removeprefix("/run/secrets/")
                assert value.startswith("/run/secrets/"), (name, key)
                assert secret in service["secrets"], f"{name} reads {secret} without mounting it"
        assert "env_file" not in service, name
        for secret in service.get("secrets", []):
            assert declared[secret]["file"].startswith("./secrets/")
    assert not (COMPOSE_DIR / ".env").exists()
    # The secret files are made by the script and never committed.
    assert (COMPOSE_DIR / ".gitignore").read_text().split() == ["secrets/"]


def test_make_secrets_creates_every_declared_file(compose: dict[str, Any], tmp_path: Path) -> None:
    script = tmp_path / "make-secrets.sh"
    script.write_text((COMPOSE_DIR / "make-secrets.sh").read_text())
    subprocess.run(["sh", str(script)], check=True, capture_output=True, timeout=30)
    made = {p.name for p in (tmp_path / "secrets").iterdir()}
    assert made == set(compose["secrets"])
    url = (tmp_path / "secrets" / "database_url").read_text()
    password = (tmp_path / "secrets" / "postgres_password").read_text()
    assert url == f"postgresql+asyncpg://voxfleet:{password}@postgres:5432/voxfleet"
    assert len((tmp_path / "secrets" / "secret_key").read_text()) >= 16  # the app's minimum
    before = (tmp_path / "secrets" / "secret_key").read_text()
    subprocess.run(["sh", str(script)], check=True, capture_output=True, timeout=30)
    assert (tmp_path / "secrets" / "secret_key").read_text() == before  # never rotated by accident


def test_every_service_has_limits_and_a_health_check(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        limits = service["deploy"]["resources"]["limits"]
        assert {"cpus", "memory"} <= set(limits), name
        if name == "migrate":
            continue
        assert "test" in service["healthcheck"], name
    for name in APP_SERVICES:
        test = " ".join(compose["services"][name]["healthcheck"]["test"])
        port = compose["services"][name]["command"][-1]
        # No curl in a slim image: the standard library asks /readyz.
        assert f"urllib.request.urlopen('http://127.0.0.1:{port}/readyz'" in test, name


def test_app_services_wait_for_the_migration(compose: dict[str, Any]) -> None:
    migrate = compose["services"]["migrate"]
    assert migrate["command"] == ["migrate"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in APP_SERVICES:
        depends = compose["services"][name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name


def test_app_containers_run_locked_down(compose: dict[str, Any]) -> None:
    for name in (*APP_SERVICES, "migrate"):
        service = compose["services"][name]
        assert service["user"] == "10001:10001"
        assert service["read_only"] is True
        assert service["cap_drop"] == ["ALL"]
        mounts = {t.split(":")[0] for t in service["tmpfs"]}
        assert mounts == {"/tmp", "/var/lib/voxfleet"}  # noqa: S108 - tmpfs mounts, not files


def test_stop_grace_covers_each_drain(compose: dict[str, Any]) -> None:
    for name in APP_SERVICES:
        service = compose["services"][name]
        drain = float(service["environment"]["VOXFLEET_DRAIN_TIMEOUT_SECONDS"])
        grace = int(service["stop_grace_period"].removesuffix("s"))
        assert grace > drain, name


def test_the_hosted_overlay_gives_agents_endpoints_the_app_accepts(tmp_path: Path) -> None:
    overlay = yaml.safe_load((COMPOSE_DIR / "hosted.yaml").read_text())
    _validator().validate(overlay)
    agent = overlay["services"]["agent"]
    (config,) = agent["configs"]
    assert config["target"] == agent["environment"]["VOXFLEET_ENDPOINTS_FILE"]
    example = COMPOSE_DIR / "endpoints.example.toml"
    endpoints = parse_endpoints(example.read_text(), str(example))
    key_file = str(endpoints["azure"].api_key_file)
    assert key_file == "/run/secrets/azure_openai_key" and "azure_openai_key" in agent["secrets"]
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        stt=agent["environment"]["VOXFLEET_STT"],
        llm=agent["environment"]["VOXFLEET_LLM"],
        tts=agent["environment"]["VOXFLEET_TTS"],
        endpoints_file=example,
    )
    assert settings.chain_for("llm") == ["azure", "local"]


def test_the_livekit_overlay_gives_landing_and_agents_settings_the_app_accepts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """livekit-transport.yaml: both sides run the LiveKit transport with the key
    LiveKit signs with, and the secret make-secrets.sh keeps equal to its own."""
    overlay = yaml.safe_load((COMPOSE_DIR / "livekit-transport.yaml").read_text())
    _validator().validate(overlay)
    server = yaml.safe_load((COMPOSE_DIR / "livekit.yaml").read_text())
    script = tmp_path / "make-secrets.sh"
    script.write_text((COMPOSE_DIR / "make-secrets.sh").read_text())
    subprocess.run(["sh", str(script)], check=True, capture_output=True, timeout=30)
    secret = (tmp_path / "secrets" / "livekit_api_secret").read_text()
    assert (tmp_path / "secrets" / "livekit_keys").read_text() == f"voxfleet: {secret}"
    for role in ("landing", "agent"):
        service = overlay["services"][role]
        env = service["environment"]
        assert env["VOXFLEET_LIVEKIT_API_KEY"] == server["webhook"]["api_key"]
        assert env["VOXFLEET_LIVEKIT_API_SECRET_FILE"] == "/run/secrets/livekit_api_secret"
        assert "livekit_api_secret" in service["secrets"]
        with monkeypatch.context() as m:
            m.setenv("VOXFLEET_TRANSPORT", env["VOXFLEET_TRANSPORT"])
            m.setenv(
                "VOXFLEET_LIVEKIT_URL",
                env["VOXFLEET_LIVEKIT_URL"].replace("${VOXFLEET_LIVEKIT_URL:-", "").rstrip("}"),
            )
            m.setenv("VOXFLEET_LIVEKIT_API_KEY", env["VOXFLEET_LIVEKIT_API_KEY"])
            m.setenv(
                "VOXFLEET_LIVEKIT_API_SECRET_FILE", str(tmp_path / "secrets" / "livekit_api_secret")
            )
            settings = Settings(_env_file=None)  # type: ignore[call-arg]
        assert settings.transport == "livekit"
        assert settings.livekit_api_secret is not None
        assert settings.livekit_api_secret.get_secret_value() == secret
