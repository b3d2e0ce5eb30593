"""The NetworkPolicies, analysed with network-config-analyzer: the connectivity
it computes for the rendered policies and workloads (plus stand-ins for the
ingress controller, KEDA, the metrics scraper, DNS, an OpenTelemetry collector
and two strangers) equals the table in docs/deploy-aks.md, and nothing else
reaches or leaves the release."""

from __future__ import annotations

import ipaddress
import re
import subprocess
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.support import NAMESPACE, RELEASE, ROOT, Obj, render, tool

pytestmark = pytest.mark.deploy

# Distinct address ranges, so each external destination can be named.
CIDRS = {
    "PostgreSQL": "10.42.16.0/24",
    "Redis": "10.42.17.4/32",
    "Azure OpenAI": "10.42.17.5/32",
}
LIVEKIT_CIDRS = {"selfhosted": "10.42.8.0/22", "cloud": "203.0.113.0/24"}
RELEASE_ENDPOINTS = {"landing", "monitor", "agent", "migration", "helm test"}
# Pods of other namespaces and of this one that the policies must tell apart.
STAND_INS = {
    ("app-routing-system", "ingress-controller", "app", "nginx"): "ingress controller",
    ("kube-system", "keda-operator", "app", "keda-operator"): "KEDA operator",
    ("kube-system", "ama-metrics", "rsName", "ama-metrics"): "metrics scraper",
    ("kube-system", "coredns", "k8s-app", "kube-dns"): "DNS",
    ("observability", "otel-collector", "app.kubernetes.io/name", "opentelemetry-collector"): (
        "OTLP collector"
    ),
    ("other", "stranger", "app", "stranger"): "stranger",
    (NAMESPACE, "neighbour", "app", "neighbour"): "neighbour",
}
TRACING = "`tracing.otlpEndpoint` set"  # the "when" of the collector's row
Pair = tuple[str, str]
Ports = set[tuple[str, int]]


def _values(livekit: str, tracing: bool) -> dict[str, Any]:
    cidrs = dict(CIDRS, LiveKit=LIVEKIT_CIDRS.get(livekit, "10.42.8.0/22"))
    endpoint = "http://otel-collector.observability:4318" if tracing else ""
    return {
        "tracing": {"otlpEndpoint": endpoint},
        "livekit": {
            "mode": livekit,
            "selfhosted": {"redisAddress": "redis:10000", "publicUrl": "wss://lk.example.com"},
        },
        "networkPolicy": {
            "postgres": {"cidrs": [cidrs["PostgreSQL"]]},
            "redis": {"cidrs": [cidrs["Redis"]]},
            "azureOpenAI": {"cidrs": [cidrs["Azure OpenAI"]]},
            "livekit": {"cidrs": [cidrs["LiveKit"]]},
        },
    }


def _pod(namespace: str, name: str, key: str, value: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {key: value}},
        "spec": {"containers": [{"name": "c", "image": "x"}]},
    }


def _computed(livekit: str, tracing: bool, tmp_path: Path) -> dict[Pair, Ports]:
    objects = render(_values(livekit, tracing))
    policies = [o for o in objects if o["kind"] == "NetworkPolicy"]
    # LiveKit runs on the host network, where NetworkPolicy does not apply.
    workloads = [
        o
        for o in objects
        if o["kind"] in ("Deployment", "Job", "Pod")
        and o["metadata"]["labels"]["app.kubernetes.io/component"] != "livekit"
    ]
    namespaces = [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": n, "labels": {"kubernetes.io/metadata.name": n}},
        }
        for n in sorted({k[0] for k in STAND_INS})
    ]
    (tmp_path / "policies.yaml").write_text(yaml.safe_dump_all(policies))
    (tmp_path / "resources.yaml").write_text(
        yaml.safe_dump_all(namespaces + workloads + [_pod(*k) for k in STAND_INS])
    )
    result = subprocess.run(
        [
            str(tool(".venv-nca", "nca")),
            "--connectivity",
            "policies.yaml",
            "--resource_list",
            "resources.yaml",
            "-o",
            "txt_no_fw_rules",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    names = _address_names(livekit)
    found: dict[Pair, Ports] = defaultdict(set)
    for line in result.stdout.splitlines():
        m = re.fullmatch(r"(\S+) => (\S+) : (.+)", line.strip())
        if not m:
            continue
        src, dst = _endpoint(m[1], names), _endpoint(m[2], names)
        if src in RELEASE_ENDPOINTS or dst in RELEASE_ENDPOINTS:
            found[(src, dst)] |= _nca_ports(m[3])
    return dict(found)


def _address_names(livekit: str) -> dict[str, str]:
    cidrs = dict(CIDRS)
    if livekit in LIVEKIT_CIDRS:
        cidrs["LiveKit"] = LIVEKIT_CIDRS[livekit]
    return cidrs


def _endpoint(text: str, cidrs: dict[str, str]) -> str:
    m = re.fullmatch(r"([^/]+)/([^\[]+)\[(\w+)\]", text)
    if m:
        namespace, name, _kind = m.groups()
        if name.startswith(f"{RELEASE}-voxfleet-"):
            role = name.removeprefix(f"{RELEASE}-voxfleet-")
            return "helm test" if role.startswith("test") else role
        for (ns, pod, _k, _v), label in STAND_INS.items():
            if (ns, pod) == (namespace, name):
                return label
        return text
    low, _, high = text.partition("-")
    nets = ipaddress.summarize_address_range(
        ipaddress.ip_address(low), ipaddress.ip_address(high or low)
    )
    for net in nets:
        owners = [n for n, c in cidrs.items() if net.subnet_of(ipaddress.ip_network(c))]
        if len(owners) != 1:
            return text  # an address range no row names
        name = owners[0]
    return name


def _nca_ports(text: str) -> Ports:
    if text == "All connections":
        return {("ALL", 0)}
    ports: Ports = set()
    pattern = r"\{protocols:([^,}]+(?:, [^,}]+)*),dst_ports:([^}]+)\}"
    for protocols, dst_ports in re.findall(pattern, text):
        for protocol in protocols.split(", "):
            ports |= _expand(protocol, dst_ports.split(","))
    return ports


def _expand(protocol: str, specs: list[str]) -> Ports:
    out: Ports = set()
    for spec in specs:
        low, _, high = spec.strip().partition("-")
        out |= {(protocol, p) for p in range(int(low), int(high or low) + 1)}
    return out


def _documented(livekit: str, tracing: bool) -> dict[Pair, Ports]:
    doc = (ROOT / "docs" / "deploy-aks.md").read_text()
    section = doc.split("## Network policies", 1)[1]
    table: dict[Pair, Ports] = defaultdict(set)
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 5 or cells[0] in ("from", "---"):
            continue
        sources, dst, port_text, when, _why = cells
        if when not in ("always", f"LiveKit {livekit}", *([TRACING] if tracing else [])):
            continue
        ports: Ports = set()
        for item in port_text.split(", "):
            protocol, _, spec = item.partition(" ")
            ports |= _expand(protocol, [spec])
        for src in sources.split(", "):
            table[(src, dst)] |= ports
    return dict(table)


@pytest.mark.parametrize(
    ("livekit", "tracing"),
    [("none", False), ("cloud", False), ("selfhosted", False), ("none", True)],
    ids=["livekit-none", "livekit-cloud", "livekit-selfhosted", "tracing"],
)
def test_connectivity_equals_the_documented_table(
    livekit: str, tracing: bool, tmp_path: Path
) -> None:
    computed = _computed(livekit, tracing, tmp_path)
    documented = _documented(livekit, tracing)
    assert documented, "docs/deploy-aks.md has no network table"
    missing = {k: v for k, v in documented.items() if computed.get(k) != v}
    extra = {k for k in computed if k not in documented}
    assert not missing, f"documented but not computed as such: {sorted(missing)}"
    assert not extra, f"reachable but not documented: {sorted(extra)}"
    # The strangers: neither reaches nor is reached by the release.
    assert not {k for k in computed if {"stranger", "neighbour"} & set(k)}
