"""The AnalysisTemplates printed in Argo Rollouts' documentation load and lint — or are refused
naming the one field deployflow does not support — and the conditions printed there
evaluate as the documentation says.

The templates are in tests/data/argo_docs/ (one file per documentation page, one block per
``# === name`` section). Each block is put into a canary rollout that refers to every
template of the block, passing the args the page's own Rollout examples pass.
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

DOCS = Path(__file__).resolve().parents[1] / "data" / "argo_docs"
P = AnalysisPhase

# What deployflow refuses, by block: the problem's beginning (it names the field).
REFUSED = {
    "prometheus-2": "spec.analysisTemplates[0].metrics[0].provider.prometheus.authentication.sigv4: not supported: SigV4",
    "prometheus-3": "spec.analysisTemplates[0].metrics[0].provider.prometheus.authentication.oauth2: not supported: the OAuth2",
    "web-6": "spec.analysisTemplates[0].metrics[0].provider.web.authentication.oauth2: not supported: the OAuth2",
    # The docs' snippet leaves out the URL (Argo requires one as well).
    "analysis-38": "spec.analysisTemplates[0].metrics[0].provider.web.url: Field required",
}


def blocks() -> dict[str, list[dict[str, Any]]]:
    found = {}
    for page in sorted(DOCS.glob("*.yaml")):
        for chunk in re.split(r"^# === ", page.read_text(), flags=re.M)[1:]:
            name = chunk.split(":", 1)[0]
            found[name] = [d for d in yaml.safe_load_all(chunk) if d]
    return found


BLOCKS = blocks()


def ref_args(templates: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The args the docs' Rollouts pass: a service name, the two pod-template hashes."""
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
            args.append({"name": name, "value": "guestbook-svc.default.svc.cluster.local"})
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
        "metadata": {"name": "guestbook"},
        "spec": {
            "service": "guestbook",
            "environment": "production",
            "version": "v2",
            "stableVersion": "v1",
            "router": {
                "nginx": {
                    "upstream": "guestbook",
                    "configPath": "/etc/nginx/conf.d/guestbook.conf",
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


def test_every_documented_block_is_in_the_table():
    assert len(BLOCKS) == 30
    assert set(REFUSED) <= set(BLOCKS)


@pytest.mark.parametrize("name", sorted(set(BLOCKS) - set(REFUSED)))
def test_argo_documentation_template_loads_and_lints(name: str):
    documents = rollout_for(BLOCKS[name])
    rollout = parse_rollout(documents, source=f"{name}.yaml")
    analysis = rollout.spec.strategy.canary.analysis  # type: ignore[union-attr]
    assert analysis is not None
    planned = plan(rollout, [t.template_name for t in analysis.templates], analysis.args)
    assert planned
    for metric in planned:
        text = metric.metric.provider.model_dump_json()
        assert "{{args." not in text.replace("{{args.api-token}}", "").replace(
            "{{ args.api-token }}", ""
        ), text  # only the secret is left for the worker


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_argo_documentation_template_we_do_not_support_is_refused_naming_the_field(name: str):
    with pytest.raises(SpecError) as refused:
        parse_rollout(rollout_for(BLOCKS[name]), source=f"{name}.yaml")
    assert any(p.startswith(REFUSED[name]) for p in refused.value.problems), refused.value.problems


def planned_of(name: str) -> list[Any]:
    rollout: Rollout = parse_rollout(rollout_for(BLOCKS[name]))
    analysis = rollout.spec.strategy.canary.analysis  # type: ignore[union-attr]
    assert analysis is not None
    return plan(rollout, [t.template_name for t in analysis.templates], analysis.args)


def test_args_from_the_rollout_and_defaults_fill_the_documented_templates():
    [success] = planned_of("analysis-3")  # prometheus-port defaults to 9090
    assert success.metric.provider.prometheus.address == "http://prometheus.example.com:9090"
    assert "guestbook-svc.default.svc.cluster.local" in success.metric.provider.prometheus.query
    [web] = planned_of("analysis-13")  # args-example: api-url default, the token a secret
    assert web.metric.provider.web.url == (
        "http://example/measure?service=guestbook-svc.default.svc.cluster.local"
    )
    assert set(web.secrets) == {"api-token"}
    assert web.secrets["api-token"].env_name == "DEPLOYFLOW_SECRET_TOKEN_SECRET_APITOKEN"
    [ranged] = planned_of("prometheus-1")
    assert ranged.metric.provider.prometheus.range_query.start == 'now() - duration("5m")'


def test_templates_including_templates_merge_metrics_once():
    names = [p.metric.name for p in planned_of("analysis-11")]
    assert names == ["success-rate", "error-rate"]


def test_documented_dry_run_and_retention_apply_to_the_metrics_they_match():
    only_5xx = {p.metric.name: p.dry_run for p in planned_of("analysis-23")}
    assert only_5xx == {"total-5xx-errors": True, "total-4xx-errors": False}
    assert all(p.dry_run for p in planned_of("analysis-24"))
    retained = {p.metric.name: p.retention for p in planned_of("analysis-28")}
    assert retained == {"total-5xx-errors": 20, "total-4xx-errors": 10}
    assert {p.retention for p in planned_of("analysis-29")} == {20}


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


# Conditions as the pages print them, with a sample result and the phase it gives.
@pytest.mark.parametrize(
    ("success", "failure", "result", "phase"),
    [
        ("result[0] >= 0.95", None, [0.97], P.SUCCESSFUL),
        ("result[0] >= 0.95", None, [0.9], P.FAILED),
        ("all(result, # < 1000)", None, [120.0, 999.0, 31.0], P.SUCCESSFUL),
        ("all(result, # < 1000)", None, [120.0, 1500.0], P.FAILED),
        ("result == true", None, True, P.SUCCESSFUL),
        (
            "result.ok && result.successPercent >= 0.90",
            None,
            {"ok": True, "successPercent": 0.95},
            P.SUCCESSFUL,
        ),
        (
            "result.ok && result.successPercent >= 0.90",
            None,
            {"ok": True, "successPercent": 0.5},
            P.FAILED,
        ),
        ('result == "I am OK"', None, "I am OK", P.SUCCESSFUL),
        ('result == ""', None, "", P.SUCCESSFUL),
        ("result == 'true'", None, "true", P.SUCCESSFUL),
        ("result[0] <= 0.95", None, [0.01], P.SUCCESSFUL),
        (None, "result[0] >= 10", [12.0], P.FAILED),
        (None, "result[0] >= 10", [3.0], P.SUCCESSFUL),
        ("result[0] >= 0.90", "result[0] < 0.50", [0.7], P.INCONCLUSIVE),
        (None, None, [0.7], P.SUCCESSFUL),
        # "Handling Metric Results": NaN, infinity, empty results, default().
        ("isNaN(result) || result >= 0.95", None, [math.nan], P.SUCCESSFUL),
        (None, "isInf(result)", [math.inf], P.FAILED),
        ("len(result) == 0 || result[0] >= 0.95", None, [], P.SUCCESSFUL),
        ("len(result) > 0 && result[0] >= 0.95", None, [], P.FAILED),
        ("default(result, 0) < 0.05", None, None, P.SUCCESSFUL),
    ],
)
def test_documented_conditions_evaluate_as_documented(success, failure, result, phase):
    values = result if isinstance(result, list) else []
    web = None if isinstance(result, list) else result
    assert classify(metric(success, failure), values, web)[0] is phase
