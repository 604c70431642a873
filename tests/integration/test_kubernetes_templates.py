"""Every container of a pod template rolls out, against the API server double: a whole
template as written (an Argo Rollout's) and several images by container name (deployflow's
``images``); the sidecar is never lost and a rollback puts the recorded template back."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from kubernetes import client
from temporalio.exceptions import ApplicationError

from activities.errors import INVALID_SPEC
from activities.kubeconfig import KubeClients
from activities.platforms.deployments import version_template
from activities.platforms.kubernetes import KubernetesDeployments
from activities.platforms.spec import DeploymentTarget
from tests.fixtures.kube import Kube
from tests.integration.test_kubernetes_platform import stored
from tests.workflows.kube_cluster import STABLE_IMAGE, team_deployment

NEW_IMAGE = "registry.example.com/shop/checkout:v2"


def manifest_template() -> dict[str, Any]:
    """An Argo Rollout's spec.template for v2: the app's env changed, the proxy upgraded,
    and a log shipper added; its annotation ``team`` dropped."""
    return {
        "metadata": {"labels": {"app": "checkout"}},
        "spec": {
            "containers": [
                {"name": "app", "image": NEW_IMAGE, "env": [{"name": "MODE", "value": "b"}]},
                {"name": "proxy", "image": "envoy:1.31"},
                {"name": "logs", "image": "fluent-bit:3.0"},
            ]
        },
    }


def platform_for(kube: Kube, **fields: Any) -> KubernetesDeployments:
    client.AppsV1Api(kube.api_client).create_namespaced_deployment(
        kube.namespace, team_deployment(deadline=120)
    )
    if not kube.real:
        kube.controller.auto_advance()
    target = DeploymentTarget.model_validate(
        {"name": "checkout", "namespace": kube.namespace, "context": kube.context, **fields}
    )
    clients = KubeClients(kubeconfig=str(kube.kubeconfig))
    deployments = KubernetesDeployments(target, clients.api(kube.context))
    deployments.wait("checkout")
    return deployments


def images(deployment: dict[str, Any]) -> list[tuple[str, str]]:
    return [(c["name"], c["image"]) for c in deployment["spec"]["template"]["spec"]["containers"]]


def env(deployment: dict[str, Any]) -> list[Any]:
    return [c.get("env") for c in deployment["spec"]["template"]["spec"]["containers"]]


def test_a_manifests_whole_template_runs_on_the_canary_then_the_stable_and_rolls_back(
    kube: Kube,
):
    platform = platform_for(kube, container="app", template=manifest_template())
    record = platform.record()
    assert (record.container, record.image, record.version) == ("app", STABLE_IMAGE, "v1")

    platform.apply_canary(record, "v2", 1, "rollout-checkout-test")
    canary = stored(kube, "checkout-canary")
    wanted = [("app", NEW_IMAGE), ("proxy", "envoy:1.31"), ("logs", "fluent-bit:3.0")]
    assert images(canary) == wanted
    assert env(canary)[0] == [{"name": "MODE", "value": "b"}]
    assert canary["spec"]["template"]["metadata"]["annotations"] == {"deployflow.io/version": "v2"}

    new = version_template(platform.target, record, "v2")
    promoted = platform.set_stable(new, None, None, "rollout-checkout-test", uid=record.uid)
    assert (promoted.updated_replicas, promoted.available_replicas) == (3, 3)
    live = stored(kube, "checkout")
    assert images(live) == wanted
    assert live["spec"]["template"]["metadata"] == {
        "labels": {"app": "checkout"},
        "annotations": {"deployflow.io/version": "v2"},
    }

    platform.set_stable(record.template, record.strategy, 120, "r", uid=record.uid)
    back = stored(kube, "checkout")
    assert back["spec"]["template"] == record.template  # both containers, env, annotation
    assert images(back) == [("app", STABLE_IMAGE), ("proxy", "envoy:1.30")]


def test_images_by_name_change_those_containers_and_keep_the_others_as_recorded(kube: Kube):
    platform = platform_for(
        kube, images={"proxy": "envoy:1.31", "app": "registry.example.com/shop/checkout:{version}"}
    )
    record = platform.record()
    assert record.container == "proxy"  # the first named: its tag says the stable version
    platform.apply_canary(record, "v2", 1, "rollout-checkout-test")
    canary = stored(kube, "checkout-canary")
    assert images(canary) == [("app", NEW_IMAGE), ("proxy", "envoy:1.31")]
    assert env(canary)[0] == [{"name": "MODE", "value": "a"}]  # the recorded template's

    platform.set_stable(version_template(platform.target, record, "v2"), None, None, "r")
    assert images(stored(kube, "checkout")) == [("app", NEW_IMAGE), ("proxy", "envoy:1.31")]


def test_an_image_for_a_container_the_deployment_lacks_is_refused_naming_the_field(kube: Kube):
    platform = platform_for(kube, images={"app": "a:{version}", "sidecar": "s:1"})
    with pytest.raises(ApplicationError) as caught:
        platform.record()
    assert caught.value.type == INVALID_SPEC
    assert caught.value.message.startswith("spec.platform.kubernetes.deployment.images.sidecar: ")
    assert "no container 'sidecar' (it has app, proxy)" in caught.value.message


def test_a_manifest_whose_first_container_the_deployment_lacks_records_the_first_one(
    kube: Kube,
):
    renamed = copy.deepcopy(manifest_template())
    renamed["spec"]["containers"][0]["name"] = "web"
    platform = platform_for(kube, container="web", template=renamed)
    record = platform.record()
    assert (record.container, record.version) == ("app", "v1")
