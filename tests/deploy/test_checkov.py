"""checkov (in its own virtualenv, .venv-checkov) on the rendered chart, the
Dockerfile and the Bicep: no failed check. Every skip carries its reason next to
it (a `checkov.io/skipN` annotation in the chart, a `checkov:skip=ID:reason`
comment in the Bicep), and this test reads the reasons back.

The chart is checked as production renders it: each value set layered on the
production-like one, whose images are pinned by digest (CKV_K8S_43) and pulled
`Always` (CKV_K8S_15); the defaults name a tag for a first try."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.support import ROOT, VALUE_SETS, merged, render_raw, tool

pytestmark = pytest.mark.deploy

# A placeholder digest: checkov checks that the image is pinned, not which one.
LIVEKIT_PINNED = {
    "livekit": {"selfhosted": {"image": "livekit/livekit-server:v1.13.5@sha256:" + "0" * 64}}
}
CHART_SETS = {
    name: merged(VALUE_SETS["production"], VALUE_SETS[name], LIVEKIT_PINNED)
    for name in ("production", "livekit-cloud", "livekit-selfhosted", "hpa")
}


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """One checkov run over everything: {framework: report}."""
    charts = tmp_path_factory.mktemp("checked")
    (charts / "docker").mkdir()
    (charts / "docker" / "Dockerfile").write_text(
        (ROOT / "deploy" / "docker" / "Dockerfile").read_text()
    )
    for name, values in CHART_SETS.items():
        (charts / name).mkdir()
        for path, text in render_raw(values).items():
            if text.strip() and not path.endswith("NOTES.txt"):
                (charts / name / path.replace("/", "_")).write_text(text)
    result = subprocess.run(
        [
            str(tool(".venv-checkov", "checkov")),
            "--directory",
            str(charts),
            "--directory",
            str(ROOT / "deploy" / "azure"),
            "--framework",
            "kubernetes",
            "bicep",
            "dockerfile",
            "--skip-download",
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    found = {r["check_type"]: r for r in _json_documents(result.stdout)}
    assert set(found) == {"kubernetes", "bicep", "dockerfile"}, result.stderr[-2000:]
    return found


def _json_documents(text: str) -> list[dict[str, Any]]:
    """checkov prints one JSON list, or one object per framework back to back."""
    decoder, docs, at = json.JSONDecoder(), [], 0
    while text[at:].strip():
        doc, end = decoder.raw_decode(text, at + len(text[at:]) - len(text[at:].lstrip()))
        docs.extend(doc if isinstance(doc, list) else [doc])
        at = end
    return docs


def _failures(report: dict[str, Any]) -> list[str]:
    return [
        f"{c['check_id']} {c['resource']} ({c['file_path']}): {c['check_name']}"
        for c in report["results"]["failed_checks"]
    ]


@pytest.mark.parametrize("framework", ["kubernetes", "bicep", "dockerfile"])
def test_no_failed_check(reports: dict[str, dict[str, Any]], framework: str) -> None:
    report = reports[framework]
    assert report["summary"]["parsing_errors"] == 0
    assert report["summary"]["passed"] > 0
    assert _failures(report) == []


@pytest.mark.parametrize("framework", ["kubernetes", "bicep"])
def test_every_skip_gives_its_reason(reports: dict[str, dict[str, Any]], framework: str) -> None:
    skipped = reports[framework]["results"]["skipped_checks"]
    assert skipped, "the skips below are expected to be read back"
    for check in skipped:
        reason = check.get("check_result", {}).get("suppress_comment", "")
        assert len(reason) > 20, (
            f"{check['check_id']} on {check['resource']} skipped without a reason"
        )


def test_bicep_resources_were_all_read(reports: dict[str, dict[str, Any]]) -> None:
    """checkov skips files it cannot parse: every module must have been scanned."""
    scanned = {
        Path(c["file_path"]).name
        for kind in ("passed_checks", "failed_checks", "skipped_checks")
        for c in reports["bicep"]["results"][kind]
    }
    modules = {p.name for p in (ROOT / "deploy" / "azure" / "modules").glob("*.bicep")}
    # Modules with no resource checkov has checks for are not listed in its results.
    assert {"aks.bicep", "keyvault.bicep", "postgres.bicep", "registry.bicep"} <= scanned
    assert scanned <= modules | {"main.bicep"}
