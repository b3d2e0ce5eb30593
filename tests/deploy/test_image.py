"""The Dockerfile: the two targets the docs promise (runtime without the local
models, local with them), a base pinned by digest, a numeric non-root user,
OCI labels, and a build context that carries only what the image needs.
No image is built here (no Docker engine): docs/deploy-compose.md says how."""

from __future__ import annotations

import re

import pytest

from tests.deploy.support import ROOT

pytestmark = pytest.mark.deploy

DOCKERFILE = (ROOT / "deploy" / "docker" / "Dockerfile").read_text()


def _stage(name: str) -> str:
    """The instructions of one stage."""
    start = DOCKERFILE.index(f" AS {name}\n")
    following = DOCKERFILE.find("\nFROM ", start)
    return DOCKERFILE[start : following if following > 0 else None]


def test_base_is_pinned_by_digest() -> None:
    external = [image for image in re.findall(r"^FROM (\S+)", DOCKERFILE, re.M) if ":" in image]
    assert external, "no external base image"
    for image in external:
        assert re.fullmatch(r"python:3\.11-slim-bookworm@sha256:[0-9a-f]{64}", image), image


def test_runtime_has_no_local_models_and_local_has_them() -> None:
    stage_of = {name: base for base, name in re.findall(r"^FROM (\S+) AS (\S+)$", DOCKERFILE, re.M)}
    assert stage_of["runtime"] == "base" and stage_of["local"] == "base"
    assert "COPY --from=build-runtime /opt/venv /opt/venv" in _stage("runtime")
    assert "COPY --from=build-local /opt/venv /opt/venv" in _stage("local")
    assert 'pip install --no-cache-dir ".[local]"' in _stage("build-local")
    runtime_install = _stage("build-runtime")
    assert "pip install --no-cache-dir ." in runtime_install
    assert "[local]" not in runtime_install
    # `docker build` without --target makes the image without GPL code: the last stage.
    assert DOCKERFILE.rstrip().split("\nFROM ")[-1].startswith("base AS runtime")


def test_llama_cpp_is_built_for_a_portable_cpu_not_the_build_machines() -> None:
    """An image built on a runner with AVX-512 or AMX starts on a node without them."""
    stage = _stage("build-local")
    args = re.search(r'^ENV CMAKE_ARGS="([^"]+)"$', stage, re.M)
    assert args is not None, "build-local does not set CMAKE_ARGS"
    flags = args.group(1).split()
    assert "-DGGML_NATIVE=OFF" in flags and "-DGGML_AVX2=ON" in flags
    assert not any("AVX512" in f or "AMX" in f for f in flags)
    assert stage.index("CMAKE_ARGS") < stage.index('pip install --no-cache-dir ".[local]"')


def test_runs_as_a_numeric_non_root_user_with_writable_paths_only_in_data_and_tmp() -> None:
    users = re.findall(r"^USER (\S+)$", DOCKERFILE, re.M)
    assert users[-1] == "10001:10001"
    for stage in ("runtime", "local"):
        final_user = re.findall(r"^USER (\S+)$", _stage(stage), re.M)
        assert final_user in ([], ["10001:10001"], ["root", "10001:10001"]), stage
    assert "VOXFLEET_DATA_DIR=/var/lib/voxfleet" in DOCKERFILE
    assert "PYTHONDONTWRITEBYTECODE=1" in DOCKERFILE  # no .pyc writes on a read-only root
    assert "HOME=/tmp" in DOCKERFILE


def test_oci_labels() -> None:
    for label in ("title", "version", "revision", "created", "licenses", "source", "base.name"):
        assert f"org.opencontainers.image.{label}=" in DOCKERFILE, label


def test_health_check_needs_no_curl() -> None:
    (check,) = re.findall(r"^  CMD (.+)$", DOCKERFILE, re.M)
    assert check.startswith('["python", "-c"') and "/livez" in check


def test_build_context_is_only_what_the_image_needs() -> None:
    ignore = (ROOT / ".dockerignore").read_text().split()
    assert ignore[ignore.index("*") + 1 :][:3] == ["!pyproject.toml", "!README.md", "!src/"]
    copied = re.findall(r"^COPY (?!--from)(\S+)", DOCKERFILE, re.M)
    assert set(copied) == {"pyproject.toml", "src"}
