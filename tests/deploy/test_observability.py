"""The shipped dashboard (deploy/observability/grafana) and alert rules
(deploy/observability/prometheus): they parse, every PromQL expression parses
and names only metrics a real app exports after a scripted call, and every
alert waits (`for`), has a severity and says what is wrong and what to look at."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import kubernetes_validate
import promql_parser
import pytest
import yaml
from helm_python import lint
from prometheus_client.parser import text_string_to_metric_families

from tests.deploy.support import CHART, NAMESPACE, ROOT, render
from tests.support.metrics import metrics_around_a_call

pytestmark = pytest.mark.deploy

OBSERVABILITY = ROOT / "deploy" / "observability"
DASHBOARD = OBSERVABILITY / "grafana" / "voxfleet.json"
ALERTS = OBSERVABILITY / "prometheus" / "alerts.yaml"
MONITORING = {
    "monitoring": {
        "prometheusRule": {"enabled": True, "labels": {"release": "kps"}},
        "grafanaDashboard": {"enabled": True, "annotations": {"grafana_folder": "voxfleet"}},
    }
}
SUFFIXES = {  # the series a family of each type puts on /metrics
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
}


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """Series names on a whole app's /metrics after a call: those with samples,
    and those a labelled family would have (its HELP and TYPE are there before
    its first sample: a provider's breaker before any fault)."""
    _, text = asyncio.run(metrics_around_a_call(tmp_path_factory.mktemp("app"), turns=1))
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.update(s.name for s in family.samples)
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ("",)))
    return names


def selectors(node: object) -> Iterator[str]:
    """The metric names an expression selects, walking its tree."""
    if isinstance(node, promql_parser.VectorSelector):
        if node.name is None:
            raise ValueError(f"a selector without a metric name: {node}")
        yield node.name
    elif isinstance(node, promql_parser.MatrixSelector):
        yield from selectors(node.vector_selector)
    elif isinstance(node, promql_parser.BinaryExpr):
        yield from selectors(node.lhs)
        yield from selectors(node.rhs)
    elif isinstance(node, promql_parser.Call):
        for arg in node.args:
            yield from selectors(arg)
    elif isinstance(
        node,
        promql_parser.AggregateExpr
        | promql_parser.ParenExpr
        | promql_parser.UnaryExpr
        | promql_parser.SubqueryExpr,
    ):
        yield from selectors(node.expr)


def names_in(expr: str) -> set[str]:
    # Grafana fills $__rate_interval in before Prometheus sees the query.
    return set(selectors(promql_parser.parse(expr.replace("$__rate_interval", "5m"))))


def dashboard_exprs() -> list[str]:
    board: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in board["panels"] for t in p["targets"]]


def alert_rules() -> list[dict[str, Any]]:
    doc: dict[str, Any] = yaml.safe_load(ALERTS.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def test_the_walker_finds_every_name() -> None:
    expr = "histogram_quantile(0.9, sum by (le) (rate(a_bucket[5m]))) > on() -(b) and c offset 1m"
    assert names_in(expr) == {"a_bucket", "b", "c"}
    assert names_in("max_over_time(max(d)[10m:1m])") == {"d"}


def test_every_dashboard_query_names_exported_metrics(exported: set[str]) -> None:
    board = json.loads(DASHBOARD.read_text())
    assert board["uid"] == "voxfleet" and len(board["panels"]) >= 10
    exprs = dashboard_exprs()
    used = set().union(*(names_in(e) for e in exprs))
    assert used - exported == set()
    for wanted in (
        "voxfleet_turn_stage_seconds_bucket",
        "voxfleet_voice_to_voice_seconds_bucket",
        "voxfleet_agent_capacity",
        "voxfleet_desired_agents",
        "voxfleet_failovers_total",
        "voxfleet_provider_breaker_state",
        "voxfleet_event_loop_lag_seconds_sum",
    ):
        assert wanted in used, wanted


def test_every_alert_names_exported_metrics_and_says_what_to_do(exported: set[str]) -> None:
    rules = alert_rules()
    assert {r["alert"] for r in rules} >= {
        "VoxfleetVoiceToVoiceSlow",
        "VoxfleetProviderBreakerOpen",
        "VoxfleetFailovers",
        "VoxfleetEventLoopBlocked",
        "VoxfleetNoLiveAgents",
        "VoxfleetQueueWaitHigh",
    }
    for rule in rules:
        assert names_in(rule["expr"]) <= exported, rule["alert"]
        assert rule["for"], rule["alert"]
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]


def test_an_unknown_metric_would_be_caught(exported: set[str]) -> None:
    assert not names_in("rate(voxfleet_no_such_thing_total[5m])") <= exported
    assert "voxfleet_turn_stage_seconds_bucket" in exported


# -- the chart's copies -----------------------------------------------------------


def test_the_chart_ships_the_same_files() -> None:
    for source in (DASHBOARD, ALERTS):
        assert (CHART / "files" / source.name).read_bytes() == source.read_bytes(), source.name


def test_the_chart_renders_them_only_when_asked() -> None:
    assert {o["kind"] for o in render({})} & {"PrometheusRule"} == set()
    assert not [o for o in render({}) if o["metadata"].get("labels", {}).get("grafana_dashboard")]
    objects = render(MONITORING)
    (rule,) = [o for o in objects if o["kind"] == "PrometheusRule"]
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["metadata"]["labels"]["release"] == "kps"
    assert rule["spec"] == yaml.safe_load(ALERTS.read_text())  # {{ $value }} left for Prometheus
    (board,) = [o for o in objects if o["metadata"].get("labels", {}).get("grafana_dashboard")]
    assert board["kind"] == "ConfigMap" and board["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert board["metadata"]["annotations"] == {"grafana_folder": "voxfleet"}
    assert json.loads(board["data"]["voxfleet.json"]) == json.loads(DASHBOARD.read_text())
    kubernetes_validate.validate(board, "1.34.0", strict=True)
    report = lint(CHART, MONITORING, namespace=NAMESPACE, kube_version="v1.34.0")
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []
