"""Argo Rollout manifests as deployflow specs: our manifests in Argo Rollouts' vocabulary
(tests/data/argo_style/rollouts, covering the fields of Argo's documented examples) translate
to the router, platform and steps they mean; what deployflow does not do is refused naming the
manifest's field."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from starters.cli import main
from workflows.core.spec import SpecError
from workflows.rollouts.argo_rollout import (
    beside_the_rollout,
    replica_count_notes,
    stable_deployment,
    translate,
)
from workflows.rollouts.spec import Rollout, load_rollout, parse_rollout

EXAMPLES = Path(__file__).resolve().parents[1] / "data" / "argo_style" / "rollouts"
# The templates analysis-step.yaml refers to, measured by Prometheus instead of the Kubernetes
# Jobs of job-analysis-templates.yaml (deployflow has no job provider).
STEP_TEMPLATES = """
kind: AnalysisTemplate
apiVersion: argoproj.io/v1alpha1
metadata: {name: error-budget}
spec:
  metrics:
  - name: error-budget
    count: 2
    interval: 5s
    failureLimit: 1
    successCondition: result[0] < 0.05
    provider: {prometheus: {address: "http://127.0.0.1:9", query: "errors"}}
---
kind: ClusterAnalysisTemplate
apiVersion: argoproj.io/v1alpha1
metadata: {name: smoke-ok}
spec:
  metrics:
  - name: smoke
    count: 1
    interval: 5s
    failureLimit: 1
    successCondition: "true"
    provider: {prometheus: {address: "http://127.0.0.1:9", query: "up"}}
"""


def example(name: str) -> str:
    return (EXAMPLES / name).read_text()


def documents(name: str) -> list[Any]:
    return [d for d in yaml.safe_load_all(example(name)) if d is not None]


def problems_of(docs: list[Any]) -> list[str]:
    with pytest.raises(SpecError) as caught:
        parse_rollout(docs, "manifest.yaml")
    return caught.value.problems


def argo_rollout(name: str = "nginx-rollout.yaml") -> dict[str, Any]:
    return copy.deepcopy(documents(name)[0])


def test_a_canary_runs_its_steps_on_the_deployment_named_after_it():
    rollout = load_rollout(example("canary-steps.yaml"))

    spec = rollout.spec
    assert (spec.service, spec.environment, spec.version) == ("ledger", "default", "v1.4.0")
    assert rollout.workflow_id == "rollout-ledger-default"
    deployment = spec.targets.workloads
    assert deployment is not None
    assert (deployment.name, deployment.namespace, deployment.container) == (
        "ledger",
        "default",
        "ledger-api",
    )
    # The whole pod template rolls out as written; the first container's tag is the version.
    assert deployment.image is None
    assert deployment.template == argo_rollout("canary-steps.yaml")["spec"]["template"]
    # Argo's basic canary (no trafficRouting): each weight is a number of pods of 4.
    assert spec.router.replicas is not None
    assert spec.router.replicas.model_dump(exclude_none=True) == {
        "namespace": "default",
        "deployment": "ledger",
        "replicas": 4,
    }
    assert spec.strategy.canary is not None
    assert [s.describe() for s in spec.strategy.canary.steps] == [
        "setWeight 25",
        "pause (until promoted)",
        "setWeight 50",
        "pause 45s",
        "setWeight 75",
        "pause 15s",
    ]


def test_an_nginx_rollout_shifts_an_ingress_nginx_canary():
    spec = load_rollout(example("nginx-rollout.yaml")).spec

    nginx = spec.router.ingress_nginx
    assert nginx is not None
    assert (nginx.stable_ingress, nginx.stable_service, nginx.canary_service) == (
        "catalog-web",
        "catalog-stable",
        "catalog-canary",
    )
    assert nginx.canary_ingress_name == "catalog-web-canary"


def test_an_istio_rollout_shifts_both_virtual_services():
    spec = load_rollout(example("istio-rollout.yaml")).spec

    istio = spec.router.istio
    assert istio is not None
    assert [(v.name, v.routes) for v in istio.all_virtual_services] == [
        ("reviews-public", ["web"]),
        ("reviews-internal", ["mesh"]),
    ]
    assert (istio.stable_service, istio.canary_service) == ("reviews-stable", "reviews-canary")
    assert istio.mode == "host"


def test_an_istio_subset_rollout_names_one_virtual_service_and_the_destination_rule():
    spec = load_rollout(example("istio-subset-rollout.yaml")).spec

    istio = spec.router.istio
    assert istio is not None
    assert [(v.name, v.routes) for v in istio.all_virtual_services] == [("ratings", [])]
    assert istio.destination_rule is not None
    assert (
        istio.destination_rule.name,
        istio.destination_rule.stable_subset_name,
        istio.destination_rule.canary_subset_name,
    ) == ("ratings", "current", "next")
    assert istio.mode == "subset"


def test_a_gateway_api_header_route_rollout_keeps_its_header_route_steps():
    spec = load_rollout(example("gatewayapi-header-route-rollout.yaml")).spec

    assert spec.router.kind == "gatewayAPI"
    assert spec.strategy.canary is not None
    assert [s.describe() for s in spec.strategy.canary.steps] == [
        "setHeaderRoute beta-track",
        "pause (until promoted)",
        "setWeight 40",
        "pause 1m",
        "setHeaderRoute beta-track (remove)",
    ]
    refused = argo_rollout("gatewayapi-header-route-rollout.yaml")
    refused["spec"]["strategy"]["canary"]["steps"][0] = {"setCanaryScale": {"replicas": 1}}
    assert problems_of([refused])[0].startswith(
        "spec.strategy.canary.steps[0].setCanaryScale: not supported by deployflow"
    )


def test_an_analysis_step_takes_its_templates_from_the_same_file():
    text = example("analysis-step.yaml") + "\n---\n" + STEP_TEMPLATES
    rollout = load_rollout(text)

    assert rollout.template("error-budget") is not None
    assert [t.name for t in rollout.spec.cluster_analysis_templates] == ["smoke-ok"]
    assert rollout.spec.strategy.canary is not None
    assert rollout.spec.strategy.canary.steps[1].describe() == "analysis error-budget, smoke-ok"


def test_job_analysis_templates_are_refused_by_the_analysis_loader():
    docs = documents("analysis-step.yaml") + documents("job-analysis-templates.yaml")

    assert any("job: not supported" in p for p in problems_of(docs))


def test_a_bluegreen_rollout_switches_a_service_selector_between_the_two_deployments():
    translated = translate(documents("bluegreen.yaml")[0])

    assert translated.problems == []
    assert translated.body["spec"]["router"] == {
        "service": {
            "namespace": "default",
            "activeService": "storefront-live",
            "previewService": "storefront-next",
            "stableSelector": {"app": "storefront"},
            "canarySelector": {"app": "storefront-canary", "deployflow.io/role": "canary"},
        }
    }
    assert translated.body["spec"]["strategy"] == {"blueGreen": {"autoPromotionEnabled": False}}


def test_services_beside_the_rollout_are_read_past_and_listed():
    docs = documents("bluegreen.yaml")

    assert beside_the_rollout(docs) == ["Service storefront-live", "Service storefront-next"]
    # Without an Argo Rollout in the file a Service is no part of a spec.
    deployflow = {"apiVersion": "deployflow/v1", "kind": "Rollout"}
    assert any("got 'Service'" in p for p in problems_of([deployflow, docs[1]]))


@pytest.mark.parametrize(
    ("path", "value", "problem"),
    [
        (
            ("spec", "strategy", "canary", "steps", 1),
            {"experiment": {"templates": []}},
            "spec.strategy.canary.steps[1].experiment: not supported by deployflow: experiments",
        ),
        (
            ("spec", "strategy", "canary", "steps", 0),
            {"setMirrorRoute": {"name": "m"}},
            "spec.strategy.canary.steps[0].setMirrorRoute: not supported by deployflow",
        ),
        (
            ("spec", "strategy", "canary", "trafficRouting", "alb"),
            {"ingress": "x"},
            "spec.strategy.canary.trafficRouting.alb: not supported by deployflow",
        ),
        (
            ("spec", "strategy", "canary", "antiAffinity"),
            {"preferredDuringSchedulingIgnoredDuringExecution": {"weight": 1}},
            "spec.strategy.canary.antiAffinity: not supported by deployflow",
        ),
        (
            ("spec", "strategy", "canary", "dynamicStableScale"),
            True,
            "spec.strategy.canary.dynamicStableScale: not supported by deployflow",
        ),
        (
            ("spec", "strategy", "canary", "trafficRouting", "nginx", "stableIngresses"),
            ["a", "b"],
            "spec.strategy.canary.trafficRouting.nginx.stableIngresses: not supported",
        ),
        (
            ("spec", "strategy", "canary", "canaryServce"),
            "typo",
            "spec.strategy.canary.canaryServce: not a field of an Argo Rollout",
        ),
        (
            ("spec", "paused"),
            True,
            "spec.paused: not supported by deployflow",
        ),
    ],
)
def test_what_deployflow_does_not_do_is_refused_by_its_path(
    path: tuple[Any, ...], value: Any, problem: str
):
    manifest = argo_rollout()
    node = manifest
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value

    assert any(p.startswith(problem) for p in problems_of([manifest])), problems_of([manifest])


def test_what_deployflow_does_anyway_is_accepted():
    manifest = argo_rollout()
    manifest["spec"]["strategy"]["canary"] |= {
        "dynamicStableScale": False,
        "abortScaleDownDelaySeconds": 0,
    }
    manifest["spec"]["progressDeadlineAbort"] = True

    load_rollout(yaml.safe_dump(manifest))


def test_derived_fields_can_be_overridden_by_annotations():
    manifest = argo_rollout()
    manifest["metadata"] |= {
        "namespace": "shop",
        "annotations": {
            "deployflow.io/service": "checkout",
            "deployflow.io/environment": "production",
            "deployflow.io/version": "v2.4.1",
            "deployflow.io/context": "prod-a",
        },
    }
    spec = load_rollout(yaml.safe_dump(manifest)).spec

    assert (spec.service, spec.environment, spec.version) == ("checkout", "production", "v2.4.1")
    assert spec.targets.workloads is not None
    assert spec.targets.workloads.describe() == "prod-a/shop/deployment/catalog"
    assert spec.router.ingress_nginx is not None
    assert (spec.router.ingress_nginx.namespace, spec.router.ingress_nginx.context) == (
        "shop",
        "prod-a",
    )


def test_the_environment_is_the_namespace_unless_a_label_says_otherwise():
    manifest = argo_rollout()
    manifest["metadata"]["namespace"] = "staging-eu"
    assert load_rollout(yaml.safe_dump(manifest)).spec.environment == "staging-eu"
    manifest["metadata"]["labels"] = {"deployflow.io/environment": "staging"}
    assert load_rollout(yaml.safe_dump(manifest)).spec.environment == "staging"


def test_an_image_by_digest_needs_the_version_annotation():
    manifest = argo_rollout()
    containers = manifest["spec"]["template"]["spec"]["containers"]
    containers[0]["image"] = "registry.example.test/catalog@sha256:" + "a" * 64

    assert problems_of([manifest]) == [
        "spec.template.spec.containers[0].image: has no tag to take the version from; "
        'tag it or set metadata.annotations["deployflow.io/version"]'
    ]


def test_a_workload_ref_names_the_stable_deployment_and_needs_the_version():
    manifest = argo_rollout()
    del manifest["spec"]["template"]
    manifest["spec"]["workloadRef"] = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}
    assert problems_of([manifest]) == [
        'metadata.annotations["deployflow.io/version"]: required with workloadRef (the '
        "referenced Deployment is the stable version; this says which version to roll out)"
    ]
    manifest["metadata"]["annotations"] = {"deployflow.io/version": "v7"}
    spec = load_rollout(yaml.safe_dump(manifest)).spec
    assert spec.targets.workloads is not None
    assert (spec.targets.workloads.name, spec.version) == ("web", "v7")

    manifest["spec"]["workloadRef"]["scaleDown"] = "onsuccess"
    assert problems_of([manifest])[0].startswith(
        "spec.workloadRef.scaleDown: not supported by deployflow"
    )


def test_a_problem_in_a_derived_field_names_the_manifest_field_it_came_from():
    manifest = argo_rollout()
    manifest["spec"]["strategy"]["canary"]["canaryService"] = "Not_A_Service"
    manifest["spec"]["template"]["spec"]["containers"][0]["image"] = "demo:" + "v" * 200

    found = problems_of([manifest])
    assert any(p.startswith("spec.strategy.canary.canaryService: ") for p in found), found
    assert any(p.startswith("spec.template.spec.containers[0].image: ") for p in found), found


def test_a_selector_that_misses_the_pods_is_refused():
    manifest = argo_rollout()
    manifest["spec"]["selector"]["matchLabels"] = {"app": "other"}

    assert problems_of([manifest]) == [
        "spec.selector: does not match spec.template.metadata.labels (the pods must carry "
        "every matchLabels label)"
    ]


def test_the_stable_deployment_is_the_one_the_manifest_stands_for():
    manifest = documents("canary-steps.yaml")[0]

    deployment = stable_deployment(manifest)
    assert deployment == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "ledger"},
        "spec": {
            "replicas": 4,
            "selector": manifest["spec"]["selector"],
            "template": manifest["spec"]["template"],
            "revisionHistoryLimit": 3,
        },
    }


def test_a_translated_rollout_is_a_workflow_input_like_any_spec():
    rollout = load_rollout(example("nginx-rollout.yaml"))

    assert Rollout.model_validate_json(rollout.model_dump_json()) == rollout


@pytest.mark.parametrize(
    "name",
    [
        "canary-steps.yaml",
        "bluegreen.yaml",
        "nginx-rollout.yaml",
        "istio-rollout.yaml",
        "istio-subset-rollout.yaml",
        "gatewayapi-rollout.yaml",
        "gatewayapi-header-route-rollout.yaml",
    ],
)
def test_lint_passes_argo_style_rollouts(name: str, capsys: pytest.CaptureFixture[str]):
    assert main(["rollout", "lint", str(EXAMPLES / name)]) == 0
    assert ": valid — " in capsys.readouterr().out


def test_lint_lists_the_services_it_leaves_to_kubectl(capsys: pytest.CaptureFixture[str]):
    assert main(["rollout", "lint", str(EXAMPLES / "bluegreen.yaml")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1:] == [
        "  Service storefront-live: not applied by deployflow (kubectl apply it)",
        "  Service storefront-next: not applied by deployflow (kubectl apply it)",
    ]


def test_lint_refuses_an_experiment_step_naming_it(capsys: pytest.CaptureFixture[str]):
    path = EXAMPLES / "experiment-step.yaml"
    assert main(["rollout", "lint", str(path)]) == 2
    assert (
        "spec.strategy.canary.steps[1].experiment: not supported by deployflow"
        in capsys.readouterr().err
    )
    assert main(["rollout", "lint", "--json", str(path)]) == 2
    report = json.loads(capsys.readouterr().out)
    assert report["valid"] is False
    assert report["problems"] == [
        "spec.strategy.canary.steps[1].experiment: not supported by deployflow: experiments "
        "(a ReplicaSet per variant) are not run"
    ]


def test_lint_of_an_analysis_step_with_its_templates_in_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    path = tmp_path / "analysis-step.yaml"
    path.write_text(example("analysis-step.yaml") + "\n---\n" + STEP_TEMPLATES)
    assert main(["rollout", "lint", "--json", str(path)]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "valid": True,
        "file": str(path),
        "workflowId": "rollout-payments-default",
    }


def test_templates_kept_apart_are_read_from_a_file_or_a_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    rollout = str(EXAMPLES / "analysis-step.yaml")
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "analysis-templates.yaml").write_text(STEP_TEMPLATES)
    assert main(["rollout", "lint", rollout, "--templates", str(templates)]) == 0
    assert main(["rollout", "lint", rollout, "--templates", str(templates / "x.yaml")]) == 2
    assert "--templates" in capsys.readouterr().err
    # The same templates as Kubernetes Jobs, which deployflow does not run.
    jobs = str(EXAMPLES / "job-analysis-templates.yaml")
    assert main(["rollout", "lint", rollout, "--templates", jobs]) == 2
    assert "job: not supported" in capsys.readouterr().err


def test_lint_says_a_canary_without_traffic_routing_weighs_by_replica_counts(
    capsys: pytest.CaptureFixture[str],
):
    assert main(["rollout", "lint", str(EXAMPLES / "canary-steps.yaml")]) == 0
    assert (
        "by router replicas (weights as replica counts of 4 pods, no traffic router)"
        in capsys.readouterr().out
    )


def test_lint_notes_a_replica_count_canary_whose_pods_share_no_label_with_the_canary():
    manifest = documents("canary-steps.yaml")[0]
    assert [n.split(":")[0] for n in replica_count_notes([manifest])] == [
        "weights are replica counts"
    ]
    manifest["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"] = "ledger"
    assert replica_count_notes([manifest]) == []  # a Service can select that label
    assert replica_count_notes([argo_rollout("nginx-rollout.yaml")]) == []  # traffic routed


def test_every_container_of_the_template_needs_a_name_and_an_image():
    manifest = argo_rollout()
    manifest["spec"]["template"]["spec"]["containers"].append({"name": "proxy"})

    assert "spec.template.spec.containers[1].image: required (a string)" in problems_of([manifest])
