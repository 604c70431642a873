"""Args, placeholders, cluster templates and credentials: lint names what is wrong; ``plan``
fills in what the workflow measures."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from workflows.analysis.plan import plan
from workflows.analysis.spec import Argument
from workflows.core.spec import SpecError
from workflows.rollouts.spec import parse_rollout

TEMPLATE: dict[str, Any] = {
    "apiVersion": "argoproj.io/v1alpha1",
    "kind": "AnalysisTemplate",
    "metadata": {"name": "error-rate"},
    "spec": {
        "args": [
            {"name": "service-name"},
            {"name": "threshold", "value": "0.01"},
            {"name": "token", "valueFrom": {"secretKeyRef": {"name": "prom", "key": "token"}}},
        ],
        "metrics": [
            {
                "name": "error-rate",
                "successCondition": "result < {{args.threshold}}",
                "provider": {
                    "prometheus": {
                        "address": "http://127.0.0.1:9090",
                        "query": 'errors{svc="{{args.service-name}}",v="{{version}}",was="{{stableVersion}}"}',
                        "authentication": {"bearer": {"token": "{{args.token}}"}},
                    }
                },
            }
        ],
    },
}


def rollout_doc(analysis: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    body = {
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
                "steps": [
                    {"setWeight": 20},
                    {
                        "analysis": analysis
                        or {
                            "templates": [{"templateName": "error-rate"}],
                            "args": [{"name": "service-name", "value": "checkout-svc"}],
                        }
                    },
                ]
            }
        },
    }
    return {
        "apiVersion": "deployflow/v1",
        "kind": "Rollout",
        "metadata": {"name": "checkout", "labels": {"team": "payments"}},
        "spec": body | spec,
    }


def problems(*documents: dict[str, Any]) -> list[str]:
    with pytest.raises(SpecError) as refused:
        parse_rollout(list(documents))
    return refused.value.problems


STEP = "spec.strategy.canary.steps[1].analysis"
METRIC = "spec.analysisTemplates[0].metrics[0]"


def test_plan_fills_in_args_and_builtins_and_keeps_secrets_for_the_worker():
    rollout = parse_rollout([rollout_doc(), TEMPLATE])
    args = [Argument(name="service-name", value="checkout-svc")]
    [planned] = plan(rollout, ["error-rate"], args)
    prometheus = planned.metric.provider.prometheus
    assert prometheus is not None
    assert prometheus.query == 'errors{svc="checkout-svc",v="v2",was="v1"}'
    assert planned.metric.success_condition == "result < 0.01"
    assert prometheus.authentication.bearer.token == "{{args.token}}"  # type: ignore[union-attr]
    assert {n: r.env_name for n, r in planned.secrets.items()} == {
        "token": "DEPLOYFLOW_SECRET_PROM_TOKEN"
    }


def test_a_reference_overrides_a_default_and_field_refs_read_the_rollout():
    analysis = {
        "templates": [{"templateName": "error-rate"}],
        "args": [
            {
                "name": "service-name",
                "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['team']"}},
            },
            {"name": "threshold", "value": "0.05"},
        ],
    }
    rollout = parse_rollout([rollout_doc(analysis), TEMPLATE])
    step = rollout.spec.strategy.canary.steps[1].analysis  # type: ignore[union-attr]
    [planned] = plan(rollout, ["error-rate"], step.args)  # type: ignore[union-attr]
    assert 'svc="payments"' in planned.metric.provider.prometheus.query  # type: ignore[union-attr]
    assert planned.metric.success_condition == "result < 0.05"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda r, t: r["spec"]["strategy"]["canary"]["steps"][1]["analysis"].pop("args"),
            f"{STEP}.args: arg 'service-name' needs a value",
        ),
        (
            lambda r, t: r["spec"]["strategy"]["canary"]["steps"][1]["analysis"]["args"].append(
                {"name": "nope", "value": "1"}
            ),
            f"{STEP}.args[1].name: no template declares arg 'nope' (declared: service-name, threshold, token)",
        ),
        (
            lambda r, t: r["spec"].pop("stableVersion"),
            f"{METRIC}.provider.prometheus.query: unknown placeholder {{{{stableVersion}}}} (set spec.stableVersion",
        ),
        (
            lambda r, t: t["spec"]["metrics"][0].update(successCondition="result < {{args.token}}"),
            f"{METRIC}.successCondition: placeholder {{{{args.token}}}} is a secret, and conditions run in the workflow",
        ),
        (
            lambda r, t: t["spec"]["metrics"][0]["provider"]["prometheus"]["authentication"][
                "bearer"
            ].update(token="hunter2"),
            f"{METRIC}.provider.prometheus.authentication.bearer.token: must come from a secret arg",
        ),
        (
            lambda r, t: t["spec"]["metrics"][0]["provider"]["prometheus"].update(
                headers=[{"key": "Authorization", "value": "Basic dTpw"}]
            ),
            f"{METRIC}.provider.prometheus.headers[0].value: must come from a secret arg",
        ),
        (
            lambda r, t: t["spec"]["metrics"][0]["provider"]["prometheus"].update(
                address="http://{{args.threshold}}:x"
            ),
            f"{METRIC}.provider.prometheus.address: has an invalid port: 'http://0.01:x' (once placeholders are filled in)",
        ),
        (
            lambda r, t: t["spec"]["metrics"][0].update(
                successCondition="result <<< {{args.threshold}}"
            ),
            f"{METRIC}.successCondition: cannot be parsed",
        ),
        (
            lambda r, t: r["spec"]["strategy"]["canary"]["steps"][1]["analysis"]["args"][0].update(
                value=None,
                valueFrom={"fieldRef": {"fieldPath": "status.alb.canaryTargetGroup.name"}},
            ),
            "arg 'service-name': fieldRef.fieldPath 'status.alb.canaryTargetGroup.name' has no value in this rollout",
        ),
        (
            lambda r, t: r["spec"]["strategy"]["canary"]["steps"][1]["analysis"].update(
                analysisRunMetadata={"labels": {"a": "b"}}
            ),
            f"{STEP}.analysisRunMetadata: not supported: labels and annotations of an AnalysisRun",
        ),
        (
            lambda r, t: t["spec"]["metrics"][0].update(provider={"datadog": {"query": "q"}}),
            f"{METRIC}.provider: datadog: not supported: Argo's datadog provider",
        ),
        (
            lambda r, t: t["spec"]["metrics"][0].update(provider={"kayenta": {}}),
            f"{METRIC}.provider: kayenta: not supported: Argo's kayenta provider (asks a Kayenta server; provider.judge",
        ),
        (
            lambda r, t: t["spec"].update(templates=[{"templateName": "missing"}]),
            f"{STEP}: template 'error-rate' includes 'missing'",
        ),
        (
            lambda r, t: t["spec"].update(templates=[{"templateName": "error-rate"}]),
            f"{STEP}: templates include each other: error-rate -> error-rate",
        ),
        (
            lambda r, t: r["spec"]["strategy"]["canary"]["steps"][1]["analysis"]["templates"][
                0
            ].update(clusterScope=True),
            f"{STEP}.templates[0].templateName: 'error-rate' is an AnalysisTemplate: set clusterScope: false",
        ),
        (
            lambda r, t: t.update(kind="ClusterAnalysisTemplate"),
            f"{STEP}.templates[0].templateName: 'error-rate' is a ClusterAnalysisTemplate: set clusterScope: true",
        ),
    ],
)
def test_lint_names_what_is_wrong(change, expected):
    rollout, template = rollout_doc(), copy.deepcopy(TEMPLATE)
    change(rollout, template)
    found = problems(rollout, template)
    assert any(p.startswith(expected) or expected in p for p in found), found


def test_cluster_templates_are_referred_to_with_cluster_scope():
    template = copy.deepcopy(TEMPLATE) | {"kind": "ClusterAnalysisTemplate"}
    analysis = {
        "templates": [{"templateName": "error-rate", "clusterScope": True}],
        "args": [{"name": "service-name", "value": "checkout-svc"}],
    }
    rollout = parse_rollout([rollout_doc(analysis), template])
    assert rollout.spec.cluster_analysis_templates[0].name == "error-rate"
    assert rollout.spec.analysis_templates == []
    args = [Argument(name="service-name", value="checkout-svc")]
    assert [p.metric.name for p in plan(rollout, ["error-rate"], args)] == ["error-rate"]


def test_a_template_name_used_by_both_kinds_is_refused():
    cluster = copy.deepcopy(TEMPLATE) | {"kind": "ClusterAnalysisTemplate"}
    assert "spec.analysisTemplates: template 'error-rate' is defined twice" in problems(
        rollout_doc(), TEMPLATE, cluster
    )
