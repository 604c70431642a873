"""AnalysisTemplates written for deployflow in Argo Rollouts' vocabulary, covering the fields of
Argo's documented analysis, Prometheus and Web examples, load and lint — or are refused naming
the one field deployflow does not support — and conditions of the kinds Argo documents
evaluate as Argo's expression semantics say.

The templates are in tests/data/argo_style/analysis/ (one file per area: analysis, prometheus,
web; one block per ``# === name`` section; its README lists what each block covers). Each
block is put into a canary rollout that refers to every template of the block, passing a
service name and the two pod-template hashes for the args without a value.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from workflows.analysis.plan import plan
from workflows.analysis.run import AnalysisPhase, classify
from workflows.analysis.spec import Metric
from workflows.core.spec import SpecError
from workflows.rollouts.spec import Rollout, parse_rollout

TEMPLATES = Path(__file__).resolve().parents[1] / "data" / "argo_style" / "analysis"
SERVICE = "checkout.shop.svc.cluster.local"
P = AnalysisPhase

# What deployflow refuses, by block: the problem's beginning (it names the field).
REFUSED = {
    "prometheus-sigv4": "spec.analysisTemplates[0].metrics[0].provider.prometheus.authentication.sigv4: not supported: SigV4",
    "prometheus-oauth2": "spec.analysisTemplates[0].metrics[0].provider.prometheus.authentication.oauth2: not supported: the OAuth2",
    "web-oauth2": "spec.analysisTemplates[0].metrics[0].provider.web.authentication.oauth2: not supported: the OAuth2",
    # A web provider needs a URL (Argo requires one as well).
    "web-without-url": "spec.analysisTemplates[0].metrics[0].provider.web.url: Field required",
}


def blocks() -> dict[str, list[dict[str, Any]]]:
    found = {}
    for page in sorted(TEMPLATES.glob("*.yaml")):
        for chunk in re.split(r"^# === ", page.read_text(), flags=re.M)[1:]:
            name = chunk.split(":", 1)[0]
            found[name] = [d for d in yaml.safe_load_all(chunk) if d]
    return found


BLOCKS = blocks()


def ref_args(templates: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The args a Rollout passes: a service name, the two pod-template hashes."""
    declared = {a["name"]: a for t in templates for a in t["spec"].get("args", [])}
    args: list[dict[str, Any]] = []
    for name, arg in declared.items():
        if "value" in arg or "valueFrom" in arg:
            continue
        if name == "stable-hash":
            args.append({"name": name, "valueFrom": {"podTemplateHashValue": "Stable"}})
        elif name == "latest-hash":
            args.append({"name": name, "valueFrom": {"podTemplateHashValue": "Latest"}})
        else:
            args.append({"name": name, "value": SERVICE})
    return args


def rollout_for(templates: list[dict[str, Any]]) -> list[dict[str, Any]]:
    refs = [
        {"templateName": t["metadata"]["name"]}
        | ({"clusterScope": True} if t["kind"] == "ClusterAnalysisTemplate" else {})
        for t in templates
    ]
    rollout = {
        "apiVersion": "deployflow/v1",
        "kind": "Rollout",
        "metadata": {"name": "checkout"},
        "spec": {
            "service": "checkout",
            "environment": "production",
            "version": "v2",
            "stableVersion": "v1",
            "router": {
                "nginx": {
                    "upstream": "checkout",
                    "configPath": "/etc/nginx/conf.d/checkout.conf",
                    "stable": ["127.0.0.1:8001"],
                    "canary": ["127.0.0.1:8002"],
                }
            },
            "strategy": {
                "canary": {
                    "steps": [{"setWeight": 20}, {"pause": {"duration": "10m"}}],
                    "analysis": {"templates": refs, "args": ref_args(templates)},
                }
            },
        },
    }
    return [rollout, *templates]


def test_every_block_is_found():
    assert len(BLOCKS) == 30
    assert set(REFUSED) <= set(BLOCKS)


@pytest.mark.parametrize("name", sorted(set(BLOCKS) - set(REFUSED)))
def test_argo_style_template_loads_and_lints(name: str):
    documents = rollout_for(BLOCKS[name])
    rollout = parse_rollout(documents, source=f"{name}.yaml")
    analysis = rollout.spec.strategy.canary.analysis  # type: ignore[union-attr]
    assert analysis is not None
    planned = plan(rollout, [t.template_name for t in analysis.templates], analysis.args)
    assert planned
    secret_args = {
        a["name"]
        for t in BLOCKS[name]
        for a in t["spec"].get("args", [])
        if "secretKeyRef" in a.get("valueFrom", {})
    }
    for metric in planned:
        text = metric.metric.provider.model_dump_json()
        for secret in metric.secrets:
            assert secret in secret_args
            text = text.replace(f"{{{{args.{secret}}}}}", "")
        assert "{{args." not in text, text  # only the secrets are left for the worker


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_argo_style_template_we_do_not_support_is_refused_naming_the_field(name: str):
    with pytest.raises(SpecError) as refused:
        parse_rollout(rollout_for(BLOCKS[name]), source=f"{name}.yaml")
    assert any(p.startswith(REFUSED[name]) for p in refused.value.problems), refused.value.problems


def planned_of(name: str) -> list[Any]:
    rollout: Rollout = parse_rollout(rollout_for(BLOCKS[name]))
    analysis = rollout.spec.strategy.canary.analysis  # type: ignore[union-attr]
    assert analysis is not None
    return plan(rollout, [t.template_name for t in analysis.templates], analysis.args)


def test_args_from_the_rollout_and_defaults_fill_the_templates():
    [success] = planned_of("arg-with-default")  # prom-port defaults to 9091
    assert success.metric.provider.prometheus.address == (
        "http://metrics.observability.example.test:9091"
    )
    assert SERVICE in success.metric.provider.prometheus.query
    [web] = planned_of("args-and-secret")  # scorer-url's default, the token a secret
    assert web.metric.provider.web.url == f"http://scorer.deployflow.test/v1/score?svc={SERVICE}"
    assert set(web.secrets) == {"api-token"}
    assert web.secrets["api-token"].env_name == "DEPLOYFLOW_SECRET_SCORER_CREDENTIALS_TOKEN"
    [ranged] = planned_of("prometheus-range-query")
    assert ranged.metric.provider.prometheus.range_query.start == 'now() - duration("15m")'


def test_templates_including_templates_merge_metrics_once():
    names = [p.metric.name for p in planned_of("composite")]
    assert names == ["uptime", "queue-lag"]
    names = [p.metric.name for p in planned_of("includes-another")]
    assert sorted(names) == ["p99-latency", "server-faults"]


def test_dry_run_and_retention_apply_to_the_metrics_they_match():
    only_5xx = {p.metric.name: p.dry_run for p in planned_of("dry-run-one-metric")}
    assert only_5xx == {"server-errors": True, "client-errors": False}
    assert all(p.dry_run for p in planned_of("dry-run-every-metric"))
    retained = {p.metric.name: p.retention for p in planned_of("retention-one-metric")}
    assert retained == {"server-errors": 25, "client-errors": 10}
    assert {p.retention for p in planned_of("retention-every-metric")} == {30}


def metric(success: str | None = None, failure: str | None = None) -> Metric:
    provider = {"prometheus": {"address": "http://p:9090", "query": "q"}}
    return Metric.model_validate(
        {
            "name": "m",
            "successCondition": success,
            "failureCondition": failure,
            "provider": provider,
        }
    )


# Conditions of the kinds Argo documents (most are our templates' own), with a sample
# result and the phase it gives.
@pytest.mark.parametrize(
    ("success", "failure", "result", "phase"),
    [
        ("result[0] >= 0.99", None, [0.995], P.SUCCESSFUL),
        ("result[0] >= 0.99", None, [0.97], P.FAILED),
        ("all(result, # < 0.4)", None, [0.12, 0.39, 0.2], P.SUCCESSFUL),
        ("all(result, # < 0.4)", None, [0.12, 0.55], P.FAILED),
        ("result == true", None, True, P.SUCCESSFUL),
        (
            "result.passed && result.passRatio >= 0.9",
            None,
            {"passed": True, "passRatio": 0.95},
            P.SUCCESSFUL,
        ),
        (
            "result.passed && result.passRatio >= 0.9",
            None,
            {"passed": True, "passRatio": 0.5},
            P.FAILED,
        ),
        ('result.verdict == "pass"', None, {"verdict": "pass"}, P.SUCCESSFUL),
        ('result == "healthy"', None, "healthy", P.SUCCESSFUL),
        ('result == ""', None, "", P.SUCCESSFUL),
        ("result == 'yes'", None, "yes", P.SUCCESSFUL),
        ("result[0] <= 0.01", None, [0.002], P.SUCCESSFUL),
        (None, "result[0] >= 25", [30.0], P.FAILED),
        (None, "result[0] >= 25", [4.0], P.SUCCESSFUL),
        ("result[0] >= 0.85", "result[0] < 0.6", [0.7], P.INCONCLUSIVE),
        (None, None, [0.7], P.SUCCESSFUL),
        # Results that are no plain number: NaN, infinity, empty results, default().
        ("isNaN(result) || result >= 0.99", None, [math.nan], P.SUCCESSFUL),
        (None, "isInf(result)", [math.inf], P.FAILED),
        ("len(result) == 0 || result[0] >= 0.99", None, [], P.SUCCESSFUL),
        ("len(result) > 0 && result[0] >= 0.99", None, [], P.FAILED),
        ("default(result, 0) < 0.02", None, None, P.SUCCESSFUL),
    ],
)
def test_conditions_evaluate_as_argo_evaluates_them(success, failure, result, phase):
    values = result if isinstance(result, list) else []
    web = None if isinstance(result, list) else result
    assert classify(metric(success, failure), values, web)[0] is phase
