"""The Bicep, without the Bicep CLI (no registry these machines reach ships it;
users build it with `az bicep build`). What this checks, and no more:
- every file parses with pycep (the Bicep parser checkov uses);
- modules: every referenced file exists, each call passes only parameters the
  module declares and every one it requires (no default);
- every declared parameter is used in its file; no output exposes a @secure one;
- main.bicepparam assigns only main.bicep's parameters, and all required ones;
- the values the chart relies on agree: Key Vault secret names, identity roles
  and ServiceAccount names, subnet ranges, the autoscaler's 600 s grace cap.
Not checked: types, API versions against Azure's schemas, what Azure accepts."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.deploy.support import CHART, ROOT, find, render, tool

pytestmark = pytest.mark.deploy

AZURE = ROOT / "deploy" / "azure"
FILES = sorted(AZURE.rglob("*.bicep"))
PARAM = re.compile(r"^param (\w+) (\w+)( = .+)?$", re.M)


def _params(path: Path) -> dict[str, bool]:
    """Declared parameters -> has a default."""
    return {name: bool(default) for name, _type, default in PARAM.findall(path.read_text())}


def _module_calls(path: Path) -> list[tuple[str, set[str]]]:
    """(module path, parameters passed) of every `module` in a file."""
    calls = []
    text = path.read_text()
    for match in re.finditer(r"^module \w+ '([^']+)' = \{\n(.*?)^\}", text, re.M | re.S):
        block = match[2].split("  params: {\n", 1)[1].split("\n  }\n", 1)[0]
        calls.append((match[1], set(re.findall(r"^    '?([\w-]+)'?:", block, re.M))))
    return calls


def test_every_file_parses() -> None:
    script = (
        "import sys, pathlib\n"
        "from pycep import BicepParser\n"
        "for f in sys.argv[1:]:\n"
        "    BicepParser().parse(file_path=pathlib.Path(f))\n"
    )
    python = tool(".venv-checkov", "python")
    result = subprocess.run(
        [str(python), "-c", script, *map(str, FILES)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(FILES) >= 10


def test_modules_exist_and_get_their_parameters() -> None:
    checked = 0
    for path in FILES:
        for target, passed in _module_calls(path):
            module = (path.parent / target).resolve()
            assert module.exists(), f"{path.name}: {target} does not exist"
            declared = _params(module)
            required = {name for name, has_default in declared.items() if not has_default}
            assert passed <= set(declared), f"{path.name} -> {target}: {passed - set(declared)}"
            assert required <= passed, f"{path.name} -> {target} misses {required - passed}"
            checked += 1
    assert checked >= 10


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_parameter_is_used(path: Path) -> None:
    text = path.read_text()
    body = PARAM.sub("", text)
    for name in _params(path):
        assert re.search(rf"\b{name}\b", body), f"{path.name}: param {name} is never used"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_no_output_exposes_a_secure_parameter(path: Path) -> None:
    text = path.read_text()
    secure = re.findall(r"^@secure\(\)\n(?:@.*\n)*param (\w+)", text, re.M)
    for line in re.findall(r"^output .+$", text, re.M):
        for name in secure:
            assert not re.search(rf"\b{name}\b", line), f"{path.name}: {line}"


def test_parameters_file_matches_main() -> None:
    text = (AZURE / "main.bicepparam").read_text()
    assert re.search(r"^using './main.bicep'$", text, re.M)
    assigned = set(re.findall(r"^param (\w+) =", text, re.M))
    declared = _params(AZURE / "main.bicep")
    assert assigned <= set(declared), assigned - set(declared)
    assert {n for n, has_default in declared.items() if not has_default} <= assigned
    # Secrets come from the environment at deploy time, never from the file.
    for name in (
        "postgresAdminPassword",
        "appSecretKey",
        "adminApiKey",
        "scalingToken",
        "monitorAdminPassword",
    ):
        assert re.search(rf"^param {name} = readEnvironmentVariable\(", text, re.M), name


def test_infrastructure_matches_the_charts_expectations() -> None:
    main = (AZURE / "main.bicep").read_text()
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    # Key Vault secret names: the chart's defaults.
    stored = set(re.findall(r"'(voxfleet-[a-z-]+)'", main))
    objects = values["secrets"]["azureKeyVault"]["objects"]
    assert {v for v in objects.values() if v} <= stored
    # One identity per chart role, federated with the ServiceAccount the chart makes.
    roles = re.search(r"^var roles = \[(.*)\]$", main, re.M)
    assert roles is not None
    assert set(re.findall(r"'(\w+)'", roles[1])) == set(values["workloadIdentity"])
    identities = (AZURE / "modules" / "identities.bicep").read_text()
    assert "system:serviceaccount:${namespace}:${serviceAccountPrefix}-${role}" in identities
    accounts = {
        o["metadata"]["name"] for o in find(render({}, release="voxfleet"), "ServiceAccount")
    }
    assert {"voxfleet-landing", "voxfleet-agent", "voxfleet-monitor"} <= accounts
    # The chart's NetworkPolicy ranges are the subnets the network module makes.
    network = dict(re.findall(r"^param (\w+Subnet) string = '([^']+)'$", _read("network"), re.M))
    policy = values["networkPolicy"]
    assert policy["postgres"]["cidrs"] == [network["postgresSubnet"]]
    assert policy["redis"]["cidrs"] == [network["endpointsSubnet"]]
    assert policy["azureOpenAI"]["cidrs"] == [network["endpointsSubnet"]]
    assert policy["livekit"]["cidrs"] == [network["livekitSubnet"]]
    # The cluster autoscaler's grace cap is the chart's maxGracePeriodSeconds.
    cap = re.search(r"'max-graceful-termination-sec': '(\d+)'", _read("aks"))
    assert cap is not None
    assert int(cap[1]) == values["maxGracePeriodSeconds"]
    # The agents pool carries the label and taint the agent pods select and tolerate.
    aks = _read("aks")
    assert "nodeLabels: { 'voxfleet.io/pool': 'agents' }" in aks
    assert "nodeTaints: ['voxfleet.io/pool=agents:NoSchedule']" in aks
    assert values["agent"]["nodeSelector"] == {"voxfleet.io/pool": "agents"}


def _read(module: str) -> str:
    return (AZURE / "modules" / f"{module}.bicep").read_text()
