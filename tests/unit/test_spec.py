"""Spec validation: a good spec loads; each bad one is refused with the field's path."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from workflows.analysis.plan import plan
from workflows.core.spec import SpecError
from workflows.rollouts.spec import load_rollout, parse_rollout

GOOD = """
apiVersion: deployflow/v1
kind: Rollout
metadata: {name: checkout}
spec:
  service: checkout
  environment: production
  version: v2.4.1
  progressDeadlineSeconds: 600
  router:
    nginx: {upstream: checkout, configPath: /etc/nginx/conf.d/checkout.conf,
            stable: [127.0.0.1:8001], canary: [127.0.0.1:8002]}
  strategy:
    canary:
      steps:
        - setWeight: 5
        - pause: {duration: 30m}
        - analysis: {templates: [{templateName: error-rate}]}
        - setWeight: 25
        - pause: {}
        - setWeight: 100
      analysis: {templates: [{templateName: error-rate}], startingStep: 1}
  analysisTemplates:
    - name: error-rate
      metrics:
        - name: error-rate
          interval: 30s
          count: 10
          failureLimit: 1
          successCondition: result < 0.01
          provider:
            prometheus:
              address: http://127.0.0.1:9090
              query: sum(rate(errors{service="{{service}}",version="{{ version }}"}[1m]))
"""


def good() -> dict[str, Any]:
    return yaml.safe_load(GOOD)


def test_good_spec_loads_with_argo_names_and_defaults():
    rollout = load_rollout(GOOD)
    steps = rollout.spec.strategy.canary.steps
    assert [s.describe() for s in steps] == [
        "setWeight 5",
        "pause 30m",
        "analysis error-rate",
        "setWeight 25",
        "pause (until promoted)",
        "setWeight 100",
    ]
    metric = rollout.spec.analysis_templates[0].metrics[0]
    assert (metric.failure_limit, metric.inconclusive_limit, metric.consecutive_error_limit) == (
        1,
        0,
        4,
    )
    assert rollout.workflow_id == "rollout-checkout-production"
    assert steps[1].pause is not None
    assert steps[1].pause.timeout is not None
    assert steps[1].pause.timeout.total_seconds() == 1800


def test_placeholders_render_service_environment_and_version():
    rollout = load_rollout(GOOD)
    [planned] = plan(rollout, ["error-rate"])
    assert planned.metric.provider.prometheus.query == (  # type: ignore[union-attr]
        'sum(rate(errors{service="checkout",version="v2.4.1"}[1m]))'
    )


def test_spec_round_trips_through_json_by_alias():
    rollout = load_rollout(GOOD)
    data = rollout.model_dump(mode="json")
    assert data["spec"]["strategy"]["canary"]["steps"][0] == {
        "setWeight": 5,
        "pause": None,
        "analysis": None,
    }
    assert parse_rollout([data]) == rollout


def test_argo_analysis_template_documents_are_merged():
    doc = good()
    template = doc["spec"].pop("analysisTemplates")[0]
    argo = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": template.pop("name")},
        "spec": template,
    }
    rollout = load_rollout(yaml.safe_dump_all([doc, argo]))
    assert rollout.spec.analysis_templates[0].name == "error-rate"


def _set(doc: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    node: Any = doc
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    if value is _DELETE:
        del node[int(last) if last.isdigit() else last]
    elif last.isdigit():
        node[int(last)] = value
    else:
        node[last] = value


_DELETE = object()
S = "spec"
C = "spec.strategy.canary"
M = "spec.analysisTemplates.0.metrics.0"

BAD: list[tuple[str, Any, str]] = [
    (
        f"{C}.steps.0.setWeight",
        101,
        "spec.strategy.canary.steps[0].setWeight: Input should be less than or equal to 100",
    ),
    (
        f"{C}.steps.0.setWeight",
        -1,
        "spec.strategy.canary.steps[0].setWeight: Input should be greater than or equal to 0",
    ),
    (
        f"{C}.steps.0",
        {"setWeight": 5, "pause": {}},
        "spec.strategy.canary.steps[0]: a step is exactly one of setWeight, pause, analysis or "
        "setHeaderRoute",
    ),
    (
        f"{C}.steps.0",
        {"setWieght": 5},
        "spec.strategy.canary.steps[0].setWieght: Extra inputs are not permitted",
    ),
    (
        f"{C}.steps.1.pause.duration",
        "30 minutes",
        "spec.strategy.canary.steps[1].pause.duration: expected a duration like 30s, 5m, 1h or 1h30m",
    ),
    (f"{C}.steps", [], "spec.strategy.canary.steps: List should have at least 1 item"),
    (
        f"{C}.analysis.startingStep",
        6,
        "spec.strategy.canary.analysis.startingStep: 6 is past the last step",
    ),
    (
        f"{C}.steps.2.analysis.templates.0.templateName",
        "latency",
        "spec.strategy.canary.steps[2].analysis.templates[0].templateName: no analysisTemplate named 'latency' (have: error-rate)",
    ),
    (
        f"{M}.successCondition",
        "result <<< 1",
        "spec.analysisTemplates[0].metrics[0].successCondition: cannot be parsed as CEL or as Argo's expr: 1:9: Syntax error",
    ),
    (
        f"{M}.failureCondition",
        "errors > 1",
        "spec.analysisTemplates[0].metrics[0].failureCondition: unknown variable(s) errors",
    ),
    (f"{M}.interval", "soon", "spec.analysisTemplates[0].metrics[0].interval: expected a duration"),
    (
        f"{M}.count",
        -1,
        "spec.analysisTemplates[0].metrics[0].count: Input should be greater than or equal to 0",
    ),
    (
        f"{M}.failureLimit",
        -2,
        "spec.analysisTemplates[0].metrics[0].failureLimit: Input should be greater than or equal to -1",
    ),
    (
        f"{M}.provider",
        {},
        "spec.analysisTemplates[0].metrics[0].provider: provider: set exactly one of prometheus, web, judge; got none",
    ),
    (
        f"{M}.provider.prometheus.query",
        'rate(x{v="{{args.version}}"}[1m])',
        "spec.analysisTemplates[0].metrics[0].provider.prometheus.query: unknown placeholder {{args.version}}",
    ),
    (
        f"{M}.count",
        _DELETE,
        "spec.strategy.canary.steps[2].analysis: metric 'error-rate' has an interval but no count",
    ),
    (f"{S}.version", "v2 beta", "spec.version: String should match pattern"),
    (f"{S}.service", "Checkout_Service", "spec.service: String should match pattern"),
    (
        f"{S}.progressDeadlineSeconds",
        0,
        "spec.progressDeadlineSeconds: Input should be greater than or equal to 1",
    ),
    (
        f"{S}.router",
        {},
        "spec.router: router: set exactly one of nginx, haproxy, nop, service, ingressNginx, istio, gatewayAPI, replicas; got none",
    ),
    (f"{S}.router.nginx.stable", [], "spec.router.nginx.stable"),
    (f"{S}.environment", _DELETE, "spec.environment: Field required"),
    ("apiVersion", "argo/v1", "apiVersion: Input should be 'deployflow/v1'"),
    # A deployflow spec labelled as an Argo manifest is read as one (workflows/rollouts/argo_rollout.py).
    ("apiVersion", "argoproj.io/v1alpha1", "spec.service: not a field of an Argo Rollout"),
    (
        f"{S}.strategy",
        {},
        "spec.strategy: strategy: set exactly one of canary, blueGreen, rolling, recreate; got none",
    ),
    (f"{S}.strategy", {"blueGreen": {}}, "spec.platform: required by strategy blueGreen"),
    (
        f"{S}.strategy",
        {"rolling": {"maxUnavailable": 0, "maxSurge": 0}},
        "spec.strategy.rolling.maxUnavailable: maxUnavailable 0 and maxSurge 0 both allow 0 of 2 hosts",
    ),
    (
        f"{S}.strategy",
        {"rolling": {"maxUnavailable": "150%"}},
        "spec.strategy.rolling.maxUnavailable: expected a count or a percentage 0%..100%",
    ),
    (
        f"{S}.strategy",
        {"blueGreen": {"prePromotionAnalysis": {"templates": [{"templateName": "nope"}]}}},
        "spec.strategy.blueGreen.prePromotionAnalysis.templates[0].templateName: no analysisTemplate named 'nope'",
    ),
    (
        f"{S}.platform",
        {"command": {"deploy": ["x", "{hots}"]}},
        "spec.platform.command.deploy[1]: unknown placeholder {hots}",
    ),
    (f"{S}.healthCheck", {"http": {}, "tcp": {}}, "spec.healthCheck"),
    (
        f"{S}.platform",
        {"command": {"deploy": ["deploy", "{version}"]}, "x-strategy": "recreate"},
        "spec.platform.x-strategy: Extra inputs are not permitted",
    ),
]


def test_recreate_needs_a_stop_command():
    doc = good()
    doc["spec"]["strategy"] = {"recreate": {}}
    doc["spec"]["platform"] = {"command": {"deploy": ["deploy", "{version}"]}}
    with pytest.raises(SpecError) as refused:
        parse_rollout([doc])
    assert refused.value.problems == ["spec.platform.command.stop: required by strategy recreate"]


@pytest.mark.parametrize(
    ("path", "value", "message"), BAD, ids=[b[0] + "=" + repr(b[1])[:20] for b in BAD]
)
def test_bad_spec_is_refused_naming_the_field(path, value, message):
    doc = good()
    _set(doc, path, value if value is _DELETE else copy.deepcopy(value))
    with pytest.raises(SpecError) as refused:
        parse_rollout([doc], source="rollout.yaml")
    assert any(p.startswith(message) for p in refused.value.problems), refused.value.problems
    assert str(refused.value).startswith("rollout.yaml: invalid spec")


def test_yaml_syntax_error_is_a_spec_error():
    with pytest.raises(SpecError, match=r"\(yaml\)"):
        load_rollout("spec: [unclosed")


def test_a_file_without_a_rollout_says_so():
    with pytest.raises(SpecError, match="expected exactly one kind: Rollout, found 0"):
        load_rollout("kind: Deployment\n")
