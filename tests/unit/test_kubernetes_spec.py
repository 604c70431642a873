"""The ``platform: {kubernetes: ...}`` vocabulary: targets are workloads, bad fields named."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from activities.platforms.spec import DeploymentTarget, image_repository, image_tag
from workflows.core.spec import SpecError
from workflows.rollouts.spec import load_rollout, parse_rollout

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "kubernetes"
CANARY = (EXAMPLES / "checkout-canary.yaml").read_text()


def canary() -> dict[str, Any]:
    return yaml.safe_load(CANARY)


def problems(body: dict[str, Any]) -> list[str]:
    with pytest.raises(SpecError) as caught:
        parse_rollout([body])
    return caught.value.problems


def test_kubernetes_targets_are_the_deployment_and_its_canary():
    rollout = load_rollout(CANARY)
    targets = rollout.spec.targets
    assert targets.workloads is not None
    assert targets.workloads.name == "checkout"
    assert targets.stable == ("prod-a/shop/deployment/checkout",)
    assert targets.canary == ("prod-a/shop/deployment/checkout-canary",)
    assert targets.workloads.image_for("v2.5.0", "ignored:v1") == (
        "registry.example.com/shop/checkout:v2.5.0"
    )


def test_defaults_namespace_context_and_derived_image():
    body = canary()
    body["spec"]["platform"] = {"kubernetes": {"deployment": {"name": "checkout"}}}
    target = parse_rollout([body]).spec.targets.workloads
    assert target is not None
    assert (target.namespace, target.context, target.container) == ("default", None, None)
    assert target.describe() == "default/default/deployment/checkout"
    assert (
        target.image_for("v3", "registry:5000/shop/checkout:v2") == "registry:5000/shop/checkout:v3"
    )
    assert target.image_for("v3", "checkout@sha256:abc") == "checkout:v3"


@pytest.mark.parametrize(
    ("deployment", "problem"),
    [
        (
            {"images": {"app": "a:{version}"}, "image": "a:{version}"},
            "images: not with image or container",
        ),
        ({"images": {"app": "a:{version}"}, "container": "app"}, "images: not with image"),
        ({"images": {}}, "images"),
        ({"images": {"App": "a:{version}"}}, "images.App"),
        ({"images": {"app": "a:{tag}"}}, "images.app"),
        (
            {
                "template": {"spec": {"containers": [{"name": "app", "image": "a:1"}]}},
                "image": "a:2",
            },
            "template: not with image or images",
        ),
        ({"template": {"spec": {"containers": []}}}, "template.spec.containers: at least one"),
        ({"template": {"spec": {"containers": [{"name": "app"}]}}}, "containers[0]: needs"),
        (
            {
                "template": {"spec": {"containers": [{"name": "app", "image": "a:1"}]}},
                "container": "web",
            },
            "container: 'web' is not in template",
        ),
    ],
)
def test_images_and_template_are_refused_naming_the_field(deployment, problem):
    body = canary()
    body["spec"]["platform"] = {"kubernetes": {"deployment": {"name": "checkout", **deployment}}}
    found = problems(body)
    assert any(
        p.startswith("spec.platform.kubernetes.deployment") and problem in p for p in found
    ), found


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        (
            "name",
            "Checkout",
            "spec.platform.kubernetes.deployment.name: 'Checkout' is not a DNS-1123",
        ),
        ("name", "a" * 57, "spec.platform.kubernetes.deployment.name: 'aaaa"),
        ("namespace", "shop_1", "spec.platform.kubernetes.deployment.namespace: 'shop_1' is not"),
        (
            "image",
            "checkout:{tag}",
            "spec.platform.kubernetes.deployment.image: unknown placeholder {tag}",
        ),
        ("image", "check out:{version}", "spec.platform.kubernetes.deployment.image: 'check out"),
        (
            "canaryReplicas",
            0,
            "spec.platform.kubernetes.deployment.canaryReplicas: Input should be",
        ),
        ("context", "a\nb", "spec.platform.kubernetes.deployment.context: 'a\\nb' is not"),
        ("replicas", 3, "spec.platform.kubernetes.deployment.replicas: Extra inputs"),
    ],
)
def test_a_bad_field_is_named(field: str, value: Any, expected: str):
    body = canary()
    body["spec"]["platform"]["kubernetes"]["deployment"][field] = value
    assert any(p.startswith(expected) for p in problems(body)), problems(body)


def test_what_kubernetes_does_not_take_is_refused_by_name():
    body = canary()
    body["spec"]["healthCheck"] = {"http": {"path": "/healthz"}}
    body["spec"]["strategy"] = {"blueGreen": {}}  # runs on workloads (blue_green_workloads)
    found = problems(body)
    assert not any(p.startswith("spec.strategy.blueGreen") for p in found)
    assert any(p.startswith("spec.healthCheck: not used with platform kubernetes") for p in found)


def test_rolling_maps_to_the_deployment_and_refuses_what_the_controller_does():
    body = canary()
    body["spec"]["strategy"] = {
        "rolling": {"maxSurge": 0, "maxUnavailable": "0%", "drainSeconds": 5}
    }
    assert problems(body) == [
        "spec.strategy.rolling.drainSeconds: not used with platform kubernetes "
        "(the Deployment controller paces the update)",
        "spec.strategy.rolling.maxUnavailable: may not be 0 when maxSurge is 0 "
        "(the Deployment could never start its update)",
    ]
    body["spec"]["strategy"] = {"rolling": {"maxSurge": 1, "maxUnavailable": 0}}
    assert parse_rollout([body]).spec.strategy.rolling is not None


def test_the_rolling_example_loads():
    rollout = load_rollout((EXAMPLES / "checkout-rolling.yaml").read_text())
    assert rollout.spec.targets.stable == ("staging/shop/deployment/checkout",)


@pytest.mark.parametrize(
    ("image", "repository", "tag"),
    [
        ("checkout", "checkout", None),
        ("checkout:v1", "checkout", "v1"),
        ("registry:5000/shop/checkout", "registry:5000/shop/checkout", None),
        ("registry:5000/shop/checkout:v1", "registry:5000/shop/checkout", "v1"),
        ("checkout@sha256:0123", "checkout", None),
        ("checkout:v1@sha256:0123", "checkout", None),
    ],
)
def test_image_reference_parts(image: str, repository: str, tag: str | None):
    assert image_repository(image) == repository
    assert image_tag(image) == tag


NAMES = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,40}[a-z0-9])?", fullmatch=True)


@given(name=NAMES, namespace=NAMES, version=st.from_regex(r"[\w.+-]{1,20}", fullmatch=True))
def test_any_valid_deployment_names_a_canary_beside_it(name: str, namespace: str, version: str):
    target = DeploymentTarget(name=name, namespace=namespace)
    assert target.canary_name == f"{name}-canary"
    assert len(target.canary_name) <= 63
    assert target.image_for(version, f"repo/{name}:old") == f"repo/{name}:{version}"


@settings(deadline=None)  # six spec loads per example: slow on 2 loaded cores
@given(
    value=st.one_of(st.text(max_size=70), st.integers(), st.none(), st.lists(st.text(max_size=3)))
)
def test_any_value_for_any_field_loads_or_names_the_field(value: Any):
    for field in ("name", "namespace", "context", "container", "image", "canaryReplicas"):
        body = copy.deepcopy(canary())
        body["spec"]["platform"]["kubernetes"]["deployment"][field] = value
        found: list[str] = []
        try:
            parse_rollout([body])
        except SpecError as exc:
            found = exc.problems
        assert all(p.startswith(f"spec.platform.kubernetes.deployment.{field}") for p in found)


def test_a_replica_count_canary_scales_the_platforms_own_deployments():
    body = canary()
    deployment = body["spec"]["platform"]["kubernetes"]["deployment"]
    where = {"context": deployment["context"], "namespace": deployment["namespace"]}
    body["spec"]["router"] = {"replicas": {**where, "deployment": "checkout", "replicas": 4}}
    deployment.pop("canaryReplicas", None)
    assert load_rollout(yaml.safe_dump(body)).spec.router.kind == "replicas"

    body["spec"]["router"]["replicas"]["deployment"] = "orders"
    deployment["canaryReplicas"] = 2
    assert problems(body) == [
        "spec.router.replicas.deployment: must be the platform's Deployment "
        "(prod-a/shop/deployment/checkout), got prod-a/shop/deployment/orders",
        "spec.platform.kubernetes.deployment.canaryReplicas: not used with router replicas "
        "(each setWeight sets the canary's pods)",
    ]
    del body["spec"]["platform"]
    assert problems(body) == ["spec.router.replicas: scales Deployments: needs platform kubernetes"]
