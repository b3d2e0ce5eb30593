"""Shared pieces of the deploy/ checks: the chart rendered offline with Helm's
own engine (helm-python-sdk) for each value set, and the checkers that live in
virtualenvs of their own (made by ./vf test: checkov and network-config-analyzer
pin clashing networkx versions)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from helm_python import Chart

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "voxfleet"
VALUES_DIR = Path(__file__).parent / "values"
SCHEMAS = Path(__file__).parent / "schemas"
RELEASE = "rel"
NAMESPACE = "voxfleet"

# The value sets the issue names: defaults, LiveKit cloud, LiveKit self-hosted,
# the HPA fallback and a production-like install.
VALUE_SETS: dict[str, dict[str, Any]] = {"defaults": {}} | {
    p.stem: yaml.safe_load(p.read_text()) for p in sorted(VALUES_DIR.glob("*.yaml"))
}

Obj = dict[str, Any]


def render_raw(values: dict[str, Any], release: str = RELEASE) -> dict[str, str]:
    """{template path: rendered text}; raises Helm's errors (schema, `fail`)."""
    with Chart.load(CHART) as chart:
        return chart.render(values=values, name=release, namespace=NAMESPACE)


def render(values: dict[str, Any], release: str = RELEASE) -> list[Obj]:
    """Every object the chart renders (NOTES.txt aside), hooks and tests included."""
    objects: list[Obj] = []
    for path, text in render_raw(values, release).items():
        if path.endswith("NOTES.txt"):
            continue
        objects.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return objects


def merged(*layers: dict[str, Any]) -> dict[str, Any]:
    """Values layered like repeated `-f` files (later wins, maps merge)."""
    out: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            if isinstance(value, dict) and isinstance(out.get(key), dict):
                out[key] = merged(out[key], value)
            else:
                out[key] = value
    return out


def pod_specs(objects: list[Obj]) -> Iterator[tuple[Obj, Obj]]:
    """(object, pod spec) of every workload: Deployments, DaemonSets, Jobs, Pods."""
    for obj in objects:
        if obj["kind"] in ("Deployment", "DaemonSet", "Job"):
            yield obj, obj["spec"]["template"]["spec"]
        elif obj["kind"] == "Pod":
            yield obj, obj["spec"]


def find(objects: list[Obj], kind: str, name_suffix: str = "") -> list[Obj]:
    return [o for o in objects if o["kind"] == kind and o["metadata"]["name"].endswith(name_suffix)]


def tool(venv: str, name: str) -> Path:
    """A checker from its own virtualenv; ./vf test makes it."""
    path = ROOT / venv / "bin" / name
    if not path.exists():
        pytest.fail(f"{path} is missing: run ./vf test, which creates {venv}", pytrace=False)
    return path
