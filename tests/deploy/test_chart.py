"""The Helm chart, rendered offline with Helm's own engine for every value set:
lint, Kubernetes and CRD schemas, and the properties the deployment promises
(resources, probes, drain vs grace, disruption budgets, secrets only as files)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from helm_python import HelmError, lint

from tests.deploy.support import (
    CHART,
    NAMESPACE,
    SCHEMAS,
    VALUE_SETS,
    Obj,
    find,
    merged,
    pod_specs,
    render,
    render_raw,
)
from voxfleet.providers.endpoints import parse_endpoints
from voxfleet.settings import Settings

pytestmark = pytest.mark.deploy

# The three newest minor versions AKS supports (its N-2 window, late 2026),
# all known to the pinned kubernetes-validate. Bump with `az aks get-versions`.
AKS_VERSIONS = ("1.34.0", "1.35.0", "1.36.0")

CRD_SCHEMAS = {
    ("keda.sh/v1alpha1", "ScaledObject"): "keda-scaledobject.json",
    ("keda.sh/v1alpha1", "TriggerAuthentication"): "keda-triggerauthentication.json",
    ("secrets-store.csi.x-k8s.io/v1", "SecretProviderClass"): (
        "secrets-store-secretproviderclass.json"
    ),
    ("gateway.networking.k8s.io/v1", "HTTPRoute"): "gateway-httproute.json",
}
# Settings whose values are secrets (docs/configuration.md). LiveKit's URL is not
# one: it comes from Key Vault for LiveKit Cloud, and as a plain value self-hosted.
SECRET_SETTINGS = {
    "SECRET_KEY",
    "DATABASE_URL",
    "REDIS_URL",
    "REDIS_PASSWORD",
    "ADMIN_API_KEY",
    "SCALING_TOKEN",
    "MONITOR_ADMIN_PASSWORD",
    "LIVEKIT_API_KEY",
    "LIVEKIT_API_SECRET",
}
ROLES = ("landing", "monitor", "agent")
TMP = "/tmp"  # noqa: S108 - a mount path in the rendered pods, not a file we write


def _env(container: Obj) -> dict[str, Any]:
    return {e["name"]: e for e in container.get("env", [])}


def _aliases(spc: Obj) -> set[str]:
    """The file names a SecretProviderClass mounts."""
    return set(re.findall(r"objectAlias: (\S+)", spc["spec"]["parameters"]["objects"]))


def _deployment(objects: list[Obj], role: str) -> Obj:
    (found,) = find(objects, "Deployment", f"-{role}")
    return found


# -- lint and schemas ---------------------------------------------------------


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_helm_lint_is_clean(value_set: str) -> None:
    report = lint(CHART, VALUE_SETS[value_set], namespace=NAMESPACE, kube_version="v1.34.0")
    assert report["errors"] == []
    # Severity 1 is "info" (helm's "icon is recommended"); 2 and above are warnings/errors.
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


@pytest.mark.parametrize("version", AKS_VERSIONS)
@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_every_object_matches_its_schema(
    rendered: dict[str, list[Obj]], value_set: str, version: str
) -> None:
    for obj in rendered[value_set]:
        key = (obj["apiVersion"], obj["kind"])
        if key in CRD_SCHEMAS:
            schema = json.loads((SCHEMAS / CRD_SCHEMAS[key]).read_text())
            jsonschema.Draft7Validator(schema).validate(obj)
        else:
            kubernetes_validate.validate(obj, version, strict=True)


def test_value_sets_render_what_they_select(rendered: dict[str, list[Obj]]) -> None:
    kinds = {name: {o["kind"] for o in objs} for name, objs in rendered.items()}
    # KEDA by default, the HPA only as the fallback: never both.
    for name, found in kinds.items():
        assert ("ScaledObject" in found) != ("HorizontalPodAutoscaler" in found), name
    assert "HorizontalPodAutoscaler" in kinds["hpa"]
    assert "DaemonSet" in kinds["livekit-selfhosted"]
    assert "DaemonSet" not in kinds["livekit-cloud"]
    assert "SecretProviderClass" not in kinds["defaults"]
    assert len(find(rendered["production"], "HTTPRoute")) == 2
    assert len(find(rendered["livekit-cloud"], "Ingress")) == 1


# -- the properties the deployment promises -------------------------------------


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_every_container_has_requests_limits_and_probes(
    rendered: dict[str, list[Obj]], value_set: str
) -> None:
    for obj, spec in pod_specs(rendered[value_set]):
        long_running = obj["kind"] in ("Deployment", "DaemonSet")
        for c in spec["containers"] + spec.get("initContainers", []):
            where = f"{obj['kind']}/{obj['metadata']['name']}/{c['name']}"
            for kind in ("requests", "limits"):
                assert set(c["resources"][kind]) >= {"cpu", "memory"}, where
            # Memory limit == request: no overcommit, so no eviction under pressure.
            assert c["resources"]["limits"]["memory"] == c["resources"]["requests"]["memory"]
            if long_running:
                for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                    assert probe in c, f"{where} has no {probe}"


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_pods_run_locked_down(rendered: dict[str, list[Obj]], value_set: str) -> None:
    for obj, spec in pod_specs(rendered[value_set]):
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
        for c in spec["containers"]:
            sc = c["securityContext"]
            where = f"{obj['metadata']['name']}/{c['name']}"
            assert isinstance(sc["runAsUser"], int), where
            assert sc["runAsUser"] >= 10000, where
            assert sc["readOnlyRootFilesystem"] is True, where
            assert sc["allowPrivilegeEscalation"] is False, where
            assert sc["capabilities"]["drop"] == ["ALL"], where
            assert sc["seccompProfile"] == {"type": "RuntimeDefault"}, where
            mounts = {m["mountPath"] for m in c.get("volumeMounts", [])}
            assert TMP in mounts, where  # the only writable paths are emptyDirs
        if obj["kind"] != "DaemonSet":
            assert not spec.get("hostNetwork"), obj["metadata"]["name"]


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_grace_period_covers_prestop_and_drain(
    rendered: dict[str, list[Obj]], value_set: str
) -> None:
    for role in ROLES:
        spec = _deployment(rendered[value_set], role)["spec"]["template"]["spec"]
        (c,) = spec["containers"]
        drain = float(_env(c)["VOXFLEET_DRAIN_TIMEOUT_SECONDS"]["value"])
        pre_stop = c.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
        grace = spec["terminationGracePeriodSeconds"]
        assert grace > drain + pre_stop, role
        assert grace <= 600, f"{role}: AKS's cluster autoscaler waits at most 600 s"


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_pdb_min_available_is_below_replicas(
    rendered: dict[str, list[Obj]], value_set: str
) -> None:
    objects = rendered[value_set]
    values = merged(yaml.safe_load((CHART / "values.yaml").read_text()), VALUE_SETS[value_set])
    for role in ROLES:
        (pdb,) = find(objects, "PodDisruptionBudget", f"-{role}")
        deployment = _deployment(objects, role)
        replicas = deployment["spec"].get("replicas")
        if replicas is None:  # the autoscaler owns it: its floor counts
            replicas = values["autoscaling"]["minReplicas"]
        assert pdb["spec"]["minAvailable"] < replicas, role
        assert pdb["spec"]["selector"] == deployment["spec"]["selector"]


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_rollouts_never_drop_below_capacity_and_spread(
    rendered: dict[str, list[Obj]], value_set: str
) -> None:
    for role in ROLES:
        spec = _deployment(rendered[value_set], role)["spec"]
        assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
        keys = {t["topologyKey"] for t in spec["template"]["spec"]["topologySpreadConstraints"]}
        assert keys == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_secrets_arrive_only_as_files(rendered: dict[str, list[Obj]], value_set: str) -> None:
    objects = rendered[value_set]
    aliases = {
        spc["metadata"]["name"]: _aliases(spc) for spc in find(objects, "SecretProviderClass")
    }
    for _obj, spec in pod_specs(objects):
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for c in spec["containers"]:
            assert "envFrom" not in c
            for e in c.get("env", []):
                assert "secretKeyRef" not in e.get("valueFrom", {}), e["name"]
                setting = e["name"].removeprefix("VOXFLEET_").removesuffix("_FILE")
                if setting not in SECRET_SETTINGS:
                    continue
                assert e["name"].endswith("_FILE"), f"{e['name']} carries a secret value in env"
                # The file it names is in the mounted secrets volume.
                (mount,) = [m for m in c["volumeMounts"] if m["name"] == "secrets"]
                directory, _, file = e["value"].rpartition("/")
                assert directory == mount["mountPath"]
                volume = volumes["secrets"]
                if "csi" in volume:
                    spc_name = volume["csi"]["volumeAttributes"]["secretProviderClass"]
                    assert file in aliases[spc_name]
                else:
                    assert file in [i["path"] for i in volume["secret"]["items"]]
    for cm in find(objects, "ConfigMap"):
        assert "password" not in json.dumps(cm["data"]).lower()


def test_each_role_mounts_only_its_own_secrets(rendered: dict[str, list[Obj]]) -> None:
    objects = rendered["livekit-cloud"]
    files = {}
    for role in (*ROLES, "migration"):
        (spc,) = find(objects, "SecretProviderClass", f"-{role}")
        files[role] = _aliases(spc)
        assert spc["spec"]["parameters"]["clientID"]  # read with the role's own identity
    assert files["migration"] == {"secret-key", "database-url"}
    assert "admin-api-key" in files["monitor"]
    assert {"scaling-token", "monitor-admin-password"} <= files["monitor"]
    assert not {"scaling-token", "monitor-admin-password"} & (files["landing"] | files["agent"])
    assert "admin-api-key" not in files["landing"] | files["agent"]
    assert {"livekit-url", "livekit-api-key", "livekit-api-secret"} <= files["agent"]


def test_keda_reads_desired_agents_as_the_replica_count(rendered: dict[str, list[Obj]]) -> None:
    objects = rendered["production"]
    (so,) = find(objects, "ScaledObject")
    (trigger,) = so["spec"]["triggers"]
    # metrics-api + AverageValue: the HPA sets replicas = ceil(value / targetValue),
    # and desired_agents already is the number of agent pods wanted: target 1.
    assert trigger["type"] == "metrics-api"
    assert trigger["metricType"] == "AverageValue"
    assert trigger["metadata"]["valueLocation"] == "desired_agents"
    assert trigger["metadata"]["targetValue"] == "1"
    assert (so["spec"]["minReplicaCount"], so["spec"]["maxReplicaCount"]) == (2, 50)
    assert so["spec"]["scaleTargetRef"]["name"] == _deployment(objects, "agent")["metadata"]["name"]
    # It asks the monitor's Service, on the monitor's port, with the scaling token
    # (which opens /api/scaling and nothing else) as bearer, not the admin key.
    (svc,) = find(objects, "Service", "-monitor")
    url = f"http://{svc['metadata']['name']}.{NAMESPACE}.svc.cluster.local:"
    url += f"{svc['spec']['ports'][0]['port']}/api/scaling"
    assert trigger["metadata"]["url"] == url
    assert trigger["metadata"]["authMode"] == "bearer"
    (auth,) = find(objects, "TriggerAuthentication")
    assert trigger["authenticationRef"]["name"] == auth["metadata"]["name"]
    (ref,) = auth["spec"]["secretTargetRef"]
    assert ref["parameter"] == "token"
    (spc,) = find(objects, "SecretProviderClass", "-monitor")
    (synced,) = spc["spec"]["secretObjects"]
    assert synced["secretName"] == ref["name"]
    assert synced["data"] == [{"objectName": "scaling-token", "key": ref["key"]}]
    # Gentle scale-down; a missing signal never shrinks the fleet.
    down = so["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"]
    assert down["stabilizationWindowSeconds"] >= 300
    assert so["spec"]["fallback"]["behavior"] == "currentReplicasIfHigher"


def test_the_signal_and_the_autoscaler_agree(rendered: dict[str, list[Obj]]) -> None:
    objects = rendered["production"]
    (so,) = find(objects, "ScaledObject")
    (monitor,) = _deployment(objects, "monitor")["spec"]["template"]["spec"]["containers"]
    (agent,) = _deployment(objects, "agent")["spec"]["template"]["spec"]["containers"]
    env = _env(monitor)
    assert int(env["VOXFLEET_SCALING_MIN_AGENTS"]["value"]) == so["spec"]["minReplicaCount"]
    assert int(env["VOXFLEET_SCALING_MAX_AGENTS"]["value"]) == so["spec"]["maxReplicaCount"]
    capacity = _env(agent)["VOXFLEET_AGENT_CAPACITY"]["value"]
    assert env["VOXFLEET_AGENT_CAPACITY"]["value"] == capacity


def test_hpa_fallback_targets_the_same_signal(rendered: dict[str, list[Obj]]) -> None:
    (hpa,) = find(rendered["hpa"], "HorizontalPodAutoscaler")
    (metric,) = hpa["spec"]["metrics"]
    assert metric["external"]["metric"]["name"] == "voxfleet_desired_agents"
    assert metric["external"]["target"] == {"type": "AverageValue", "averageValue": "1"}
    assert "replicas" not in _deployment(rendered["hpa"], "agent")["spec"]


def test_migration_runs_as_a_hook_before_the_release(rendered: dict[str, list[Obj]]) -> None:
    objects = rendered["production"]
    (job,) = find(objects, "Job")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["migrate"]
    weight = int(job["metadata"]["annotations"]["helm.sh/hook-weight"])
    for kind in ("ServiceAccount", "SecretProviderClass", "NetworkPolicy"):
        (dep,) = find(objects, kind, "-migration")
        assert dep["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
        assert int(dep["metadata"]["annotations"]["helm.sh/hook-weight"]) < weight


def test_workload_identity_per_role(rendered: dict[str, list[Obj]]) -> None:
    objects = rendered["production"]
    ids = set()
    for role in ROLES:
        (sa,) = find(objects, "ServiceAccount", f"-{role}")
        ids.add(sa["metadata"]["annotations"]["azure.workload.identity/client-id"])
        template = _deployment(objects, role)["spec"]["template"]
        assert template["metadata"]["labels"]["azure.workload.identity/use"] == "true"
        assert template["spec"]["serviceAccountName"] == sa["metadata"]["name"]
    assert len(ids) == len(ROLES)


def test_deletion_cost_grants_the_agent_alone(rendered: dict[str, list[Obj]]) -> None:
    objects = rendered["production"]
    agent = _deployment(objects, "agent")["spec"]["template"]
    assert agent["metadata"]["annotations"]["controller.kubernetes.io/pod-deletion-cost"] == "0"
    assert agent["spec"]["automountServiceAccountToken"] is True
    for role in ("landing", "monitor"):
        spec = _deployment(objects, role)["spec"]["template"]["spec"]
        assert spec["automountServiceAccountToken"] is False
    (role_obj,) = find(objects, "Role")
    (rule,) = role_obj["rules"]
    assert rule == {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "patch"]}
    (binding,) = find(objects, "RoleBinding")
    assert binding["subjects"][0]["name"] == agent["spec"]["serviceAccountName"]
    assert find(rendered["defaults"], "Role")  # on by default
    off = render({"agent": {"deletionCost": {"enabled": False}}})
    assert not find(off, "Role")
    assert (
        _deployment(off, "agent")["spec"]["template"]["spec"]["automountServiceAccountToken"]
        is False
    )


def _rule(route: Obj, path: str) -> Obj:
    (rule,) = [r for r in route["spec"]["rules"] if r["matches"][0]["path"]["value"] == path]
    return rule


def test_routes_keep_websockets_open(rendered: dict[str, list[Obj]]) -> None:
    (landing,) = find(rendered["production"], "HTTPRoute", "-landing")
    ws = _rule(landing, "/ws/")
    assert ws["timeouts"]["request"] == "1h"  # above VOXFLEET_MAX_CALL_SECONDS (1800)
    (ingress,) = find(rendered["livekit-cloud"], "Ingress")
    annotations = ingress["metadata"]["annotations"]
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]) > 1800


def test_the_monitors_live_view_gets_websocket_timeouts_too(
    rendered: dict[str, list[Obj]],
) -> None:
    """The dashboard's socket (/api/live) stays open as long as the page does;
    a 30 s request timeout would cut it every 30 s."""
    (monitor,) = find(rendered["production"], "HTTPRoute", "-monitor")
    assert monitor["spec"]["hostnames"] == ["ops.example.com"]
    live = _rule(monitor, "/api/live")
    assert live["matches"][0]["path"]["type"] == "Exact"
    assert live["timeouts"] == {"request": "1h", "backendRequest": "1h"}
    assert live["backendRefs"] == [{"name": "rel-voxfleet-monitor", "port": 8082}]
    assert _rule(monitor, "/")["timeouts"] == {"request": "30s"}  # everything else
    # One Ingress for both hosts: its timeout annotations cover the monitor's host.
    (ingress,) = find(rendered["livekit-cloud"], "Ingress")
    hosts = {r["host"]: r for r in ingress["spec"]["rules"]}
    backend = hosts["ops.example.com"]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == "rel-voxfleet-monitor"
    annotations = ingress["metadata"]["annotations"]
    for name in ("proxy-read-timeout", "proxy-send-timeout"):
        assert int(annotations[f"nginx.ingress.kubernetes.io/{name}"]) > 1800, name


# -- traces ----------------------------------------------------------------------

COLLECTOR = "http://otel-collector.observability:4318"
COLLECTOR_CIDR = "10.9.0.0/16"  # a collector outside the cluster


def _is_collector(peer: Obj) -> bool:
    labels = peer.get("podSelector", {}).get("matchLabels", {})
    return (
        labels.get("app.kubernetes.io/name") == "opentelemetry-collector"
        or peer.get("ipBlock", {}).get("cidr") == COLLECTOR_CIDR
    )


def _collector_egress(objects: list[Obj], role: str) -> list[Obj]:
    """The rules of a role's policy that let it reach the collector's pods or addresses."""
    (policy,) = find(objects, "NetworkPolicy", f"-{role}")
    return [r for r in policy["spec"]["egress"] if any(_is_collector(p) for p in r["to"])]


def test_tracing_sets_the_agents_endpoint_and_opens_their_egress_to_the_collector() -> None:
    off = render({})
    for role in ROLES:
        container = _deployment(off, role)["spec"]["template"]["spec"]["containers"][0]
        assert "OTEL_EXPORTER_OTLP_ENDPOINT" not in _env(container), role
        assert _collector_egress(off, role) == [], role

    on = render({"tracing": {"otlpEndpoint": COLLECTOR}})
    agent = _deployment(on, "agent")["spec"]["template"]["spec"]["containers"][0]
    assert _env(agent)["OTEL_EXPORTER_OTLP_ENDPOINT"]["value"] == COLLECTOR
    (rule,) = _collector_egress(on, "agent")
    assert rule["ports"] == [{"port": 4318, "protocol": "TCP"}]
    assert rule["to"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "observability"}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "opentelemetry-collector"}},
        }
    ]
    # Only agents trace their turns: nothing else gets the variable or the path.
    for role in ("landing", "monitor"):
        container = _deployment(on, role)["spec"]["template"]["spec"]["containers"][0]
        assert "OTEL_EXPORTER_OTLP_ENDPOINT" not in _env(container), role
        assert _collector_egress(on, role) == [], role


@pytest.mark.parametrize(
    ("endpoint", "port", "want"),
    [
        ("https://otlp.example.com/v1", None, 443),  # no port in the URL: the scheme's
        ("http://collector.obs", None, 80),
        ("http://collector.obs:4318", 14318, 14318),  # a Service mapping 4318 to 14318
    ],
)
def test_the_collectors_port_follows_the_endpoint_unless_set(
    endpoint: str, port: int | None, want: int
) -> None:
    collector: dict[str, Any] = {"cidrs": [COLLECTOR_CIDR]}
    if port is not None:
        collector["port"] = port
    objects = render(
        {"tracing": {"otlpEndpoint": endpoint}, "networkPolicy": {"otlpCollector": collector}}
    )
    (rule,) = _collector_egress(objects, "agent")
    assert rule == {
        "to": [{"ipBlock": {"cidr": COLLECTOR_CIDR}}],
        "ports": [{"port": want, "protocol": "TCP"}],
    }


def test_values_schema_rejects_an_endpoint_that_is_not_an_http_url() -> None:
    for bad in ("otel-collector:4318", "grpc://otel-collector:4317"):
        message = _render_error({"tracing": {"otlpEndpoint": bad}})
        assert "at '/tracing/otlpEndpoint'" in message, bad


# -- refusing bad input ---------------------------------------------------------


def _render_error(values: dict[str, Any]) -> str:
    with pytest.raises(HelmError) as info:
        render_raw(values)
    return str(info.value)


def test_fail_when_drain_does_not_fit_the_grace_period() -> None:
    message = _render_error({"agent": {"drainSeconds": 90, "terminationGracePeriodSeconds": 60}})
    assert (
        "agent: preStopSeconds (0) + drainSeconds (90) + graceMarginSeconds (10) = 100 s" in message
    )
    assert "exceeds terminationGracePeriodSeconds (60)" in message
    message = _render_error({"landing": {"preStopSeconds": 20}})  # 20 + 15 + 10 > 35
    assert "landing: preStopSeconds (20)" in message


def test_fail_when_grace_exceeds_the_cluster_autoscaler_cap() -> None:
    message = _render_error({"agent": {"drainSeconds": 700, "terminationGracePeriodSeconds": 720}})
    assert "agent.terminationGracePeriodSeconds (720) exceeds maxGracePeriodSeconds" in message


def test_fail_when_pdb_would_block_every_eviction() -> None:
    message = _render_error({"monitor": {"replicas": 1}})
    assert "monitor.pdb.minAvailable (1) must be below monitor.replicas (1)" in message


def test_values_schema_rejects_a_typo_and_a_wrong_type() -> None:
    message = _render_error({"landing": {"replica": 3}})
    assert "at '/landing': additional properties 'replica' not allowed" in message
    message = _render_error({"agent": {"capacity": "four"}})
    assert "at '/agent/capacity': got string, want integer" in message
    message = _render_error({"autoscaling": {"mode": "both"}})
    assert "at '/autoscaling/mode'" in message


def test_values_schema_and_values_agree() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    jsonschema.Draft7Validator(schema).validate(values)
    for values_set in VALUE_SETS.values():
        jsonschema.Draft7Validator(schema).validate(merged(values, values_set))


def test_readme_documents_every_value() -> None:
    readme = (CHART / "README.md").read_text()
    documented = set(re.findall(r"^\| `([^`]+)` \| `", readme, re.M))
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert documented == set(_leaf_keys(values))


def _leaf_keys(values: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys down to scalars, lists and maps the user fills in (empty or
    free-form: labels, selectors, resources, behaviour)."""
    keys = []
    for key, value in values.items():
        path = f"{prefix}{key}"
        free_form = key in ("resources", "behavior", "annotations", "nodeSelector", "objects") or (
            prefix.startswith("networkPolicy.") and key.endswith("Selector")
        )
        if isinstance(value, dict) and value and not free_form:
            keys.extend(_leaf_keys(value, path + "."))
        else:
            keys.append(path)
    return keys


def test_default_render_is_deterministic() -> None:
    assert render({}) == render({})


# -- hosted providers ------------------------------------------------------------


def test_endpoints_reach_the_agents_as_settings_the_app_accepts(
    rendered: dict[str, list[Obj]], tmp_path: Path
) -> None:
    """The rendered endpoints.toml, the agent's env and its mounted key file,
    checked by the app's own settings (what the agent does at start)."""
    objects = rendered["production"]
    (config,) = find(objects, "ConfigMap", "-endpoints")
    toml = config["data"]["endpoints.toml"]
    agent = _deployment(objects, "agent")
    (container,) = agent["spec"]["template"]["spec"]["containers"]
    env = {name: e.get("value") for name, e in _env(container).items()}
    assert env["VOXFLEET_LLM"] == "azure-east,azure-west,local"
    assert env["VOXFLEET_ENDPOINTS_FILE"] == "/etc/voxfleet/endpoints.toml"
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts["endpoints"] == "/etc/voxfleet"
    endpoints = parse_endpoints(toml, "endpoints.toml")
    west = endpoints["azure-west"]
    assert (west.auth, str(west.api_key_file)) == ("key", "/mnt/secrets/endpoint-azure-west-key")
    assert endpoints["azure-east"].auth == "entra" and endpoints["azure-east"].api_key_file is None
    # The key file is one of the agent's Key Vault files, and no other role's.
    (spc,) = find(objects, "SecretProviderClass", "-agent")
    assert "endpoint-azure-west-key" in _aliases(spc)
    assert "voxfleet-azure-openai-west-key" in spc["spec"]["parameters"]["objects"]
    for role in ("landing", "monitor"):
        (other,) = find(objects, "SecretProviderClass", f"-{role}")
        assert not any(a.startswith("endpoint-") for a in _aliases(other))
    # The settings the agent starts with accept this file and these chains.
    (tmp_path / "endpoints.toml").write_text(toml)
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        providers=env["VOXFLEET_PROVIDERS"],
        stt=env["VOXFLEET_STT"],
        llm=env["VOXFLEET_LLM"],
        tts=env["VOXFLEET_TTS"],
        endpoints_file=tmp_path / "endpoints.toml",
    )
    assert settings.chain_for("tts") == ["azure-east", "local"]


def test_only_agents_reach_entra_id_and_only_with_an_entra_endpoint(
    rendered: dict[str, list[Obj]],
) -> None:
    def entra_rules(objects: list[Obj], role: str) -> list[Obj]:
        (policy,) = find(objects, "NetworkPolicy", f"-{role}")
        return [
            rule
            for rule in policy["spec"].get("egress", [])
            for to in rule.get("to", [])
            if to.get("ipBlock", {}).get("cidr") == "0.0.0.0/0"
        ]

    (rule,) = entra_rules(rendered["production"], "agent")
    assert rule["ports"] == [{"port": 443, "protocol": "TCP"}]
    assert "10.0.0.0/8" in rule["to"][0]["ipBlock"]["except"]
    assert entra_rules(rendered["production"], "landing") == []
    assert entra_rules(rendered["hpa"], "agent") == []  # no endpoint, no rule


@pytest.mark.parametrize(
    ("providers", "says"),
    [
        ({"llm": "azure-north"}, 'providers.llm names "azure-north": neither a built-in'),
        (
            {"tts": "e", "endpoints": {"e": {"url": "https://e", "auth": "none", "llm": "m"}}},
            'providers.tts names endpoint "e", which sets no tts model',
        ),
        (
            {"endpoints": {"e": {"url": "https://e", "llm": "m"}}},
            "providers.endpoints.e: auth is key: set apiKeySecret",
        ),
        (
            {"endpoints": {"e": {"url": "https://e", "auth": "entra", "llm": "m"}}},
            "providers.endpoints.e: auth is entra: set workloadIdentity.agent.clientId",
        ),
    ],
)
def test_fail_on_providers_the_agents_could_not_start_with(
    providers: dict[str, Any], says: str
) -> None:
    assert says in _render_error({"providers": providers})


def test_fail_when_the_runtime_image_would_need_the_local_models() -> None:
    message = _render_error({"image": {"flavor": "runtime"}})
    assert "providers.stt uses the local models, which the runtime image does not have" in message


@pytest.mark.parametrize("value_set", ["livekit-cloud", "livekit-selfhosted"])
def test_livekit_modes_give_landings_and_agents_settings_the_app_accepts(
    rendered: dict[str, list[Obj]], value_set: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With LiveKit on, landings and agents run the LiveKit transport; their
    env plus their mounted files (stand-ins here) start the app's settings."""
    objects = rendered[value_set]
    for role in ("landing", "agent"):
        (container,) = _deployment(objects, role)["spec"]["template"]["spec"]["containers"]
        env = {name: e.get("value") for name, e in _env(container).items()}
        assert env["VOXFLEET_TRANSPORT"] == "livekit"
        with monkeypatch.context() as m:
            for name, value in env.items():
                if name.endswith("_FILE"):
                    path = tmp_path / Path(value).name
                    path.write_text("wss://lk.example.com" if "LIVEKIT_URL" in name else "x" * 32)
                    m.setenv(name, str(path))
                elif name.startswith("VOXFLEET_LIVEKIT") or name == "VOXFLEET_TRANSPORT":
                    m.setenv(name, value)
            settings = Settings(_env_file=None)  # type: ignore[call-arg]
        assert settings.transport == "livekit" and settings.livekit_url is not None
    (monitor,) = _deployment(objects, "monitor")["spec"]["template"]["spec"]["containers"]
    assert "VOXFLEET_TRANSPORT" not in _env(monitor)


def test_fail_when_selfhosted_livekit_has_no_public_url() -> None:
    message = _render_error(
        {"livekit": {"mode": "selfhosted", "selfhosted": {"redisAddress": "redis:10000"}}}
    )
    assert "set livekit.selfhosted.publicUrl" in message
