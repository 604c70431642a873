"""The replica-count router (Argo's basic canary) with the real client over HTTP against
the API server double: the replicas stored at each weight, the order of the changes (what
grows is available before anything shrinks), a rollback's restore, and faults."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities import errors
from activities.clients import Clients
from activities.kubeconfig import KubeClients
from activities.platforms.kubernetes import KubernetesDeployments
from activities.platforms.spec import DeploymentTarget
from activities.routing import replicas as replicas_module
from activities.routing.activities import RouterActivities
from activities.routing.base import Weights
from activities.routing.models import SetWeightInput
from activities.routing.replicas import TOTAL, ReplicasRouter
from activities.routing.spec import RouterSpec
from tests.fixtures.kube import Kube
from tests.integration.test_kubernetes_platform import stored
from tests.workflows.kube_cluster import team_deployment

SHARED = {"app.kubernetes.io/name": "checkout"}
"""A pod label both Deployments' pods carry: what the Service of a basic canary selects."""


@pytest.fixture
def clients(kube: Kube) -> KubeClients:
    """The team's Deployment (4 replicas) rolled out and deployflow's canary at 0 pods, as
    the rollout leaves them before its first setWeight."""
    if kube.real:
        pytest.skip("drives the Deployment controller simulation")
    body = team_deployment(replicas=4)
    body["spec"]["template"]["metadata"]["labels"] |= SHARED
    client.AppsV1Api(kube.api_client).create_namespaced_deployment(kube.namespace, body)
    kube.controller.auto_advance()
    clusters = KubeClients(kubeconfig=str(kube.kubeconfig))
    target = DeploymentTarget(name="checkout", namespace=kube.namespace, context=kube.context)
    platform = KubernetesDeployments(target, clusters.api(kube.context))
    platform.wait("checkout")
    platform.apply_canary(platform.record(), "v2", 0, "rollout-checkout-test")
    return clusters


def router(kube: Kube, clients: KubeClients, **fields: Any) -> ReplicasRouter:
    spec = RouterSpec.model_validate(
        {
            "replicas": {
                "context": kube.context,
                "namespace": kube.namespace,
                "deployment": "checkout",
                **fields,
            }
        }
    )
    assert spec.replicas is not None
    return ReplicasRouter(spec.replicas, clients)


def pods(kube: Kube) -> tuple[int, int, int, int]:
    """``(stable, canary)`` replicas as stored, then their available replicas."""
    stable, canary = stored(kube, "checkout"), stored(kube, "checkout-canary")
    return (
        stable["spec"]["replicas"],
        canary["spec"]["replicas"],
        stable.get("status", {}).get("availableReplicas", 0),
        canary.get("status", {}).get("availableReplicas", 0),
    )


def scaled(kube: Kube, since: int) -> list[tuple[str, int | None]]:
    """The Deployments patched since request ``since``, with the replicas each patch set."""
    return [
        (r.path.rsplit("/", 1)[-1], (r.body or {}).get("spec", {}).get("replicas"))  # type: ignore[union-attr]
        for r in kube.requests()[since:]
        if r.method == "PATCH"
    ]


def annotation(kube: Kube) -> str | None:
    found: str | None = (stored(kube, "checkout")["metadata"].get("annotations") or {}).get(TOTAL)
    return found


def test_each_weight_scales_the_canary_and_the_stable_keeps_the_rest(
    kube: Kube, clients: KubeClients
):
    replicas = router(kube, clients)
    seen = []
    for weight in (25, 50, 75, 100, 0):
        replicas.set_weights(Weights.canary_at(weight))
        kube.controller.settle()
        seen.append((weight, pods(kube), replicas.get_weights().canary, annotation(kube)))

    assert seen == [
        (25, (3, 1, 3, 1), 25, "4"),
        (50, (2, 2, 2, 2), 50, "4"),
        (75, (1, 3, 1, 3), 75, "4"),
        (100, (0, 4, 0, 4), 100, "4"),
        (0, (4, 0, 4, 0), 0, None),  # back on stable: the recorded total is gone
    ]


def test_what_grows_is_available_before_the_other_side_shrinks(kube: Kube, clients: KubeClients):
    replicas = router(kube, clients, replicas=4)
    start = len(kube.requests())
    replicas.set_weights(Weights.canary_at(50))
    # When set_weights returns the canary's pods are already available (its wait).
    assert pods(kube)[1::2] == (2, 2)
    assert scaled(kube, start) == [("checkout-canary", 2), ("checkout", 2)]

    start = len(kube.requests())
    replicas.set_weights(Weights.canary_at(0))  # a rollback: stable up first, then canary down
    assert pods(kube)[0::2] == (4, 4)
    assert scaled(kube, start) == [("checkout", 4), ("checkout-canary", 0)]


def test_a_repeat_writes_nothing_and_the_spec_total_wins(kube: Kube, clients: KubeClients):
    replicas = router(kube, clients, replicas=6)
    replicas.set_weights(Weights.canary_at(10))  # 0.6 of a pod: still one canary pod
    assert pods(kube)[:2] == (5, 1)
    assert annotation(kube) is None  # the spec says the total: nothing to record
    start = len(kube.requests())
    replicas.set_weights(Weights.canary_at(10))
    assert scaled(kube, start) == []


def test_a_retry_after_a_lost_worker_splits_the_recorded_total(kube: Kube, clients: KubeClients):
    replicas = router(kube, clients)
    replicas.set_weights(Weights.canary_at(25))
    # The worker died mid-change to 75 %: the canary grew, the stable did not shrink yet.
    apps = client.AppsV1Api(kube.api_client)
    apps.patch_namespaced_deployment_scale(
        "checkout-canary", kube.namespace, {"spec": {"replicas": 3}}
    )
    kube.controller.settle()
    assert pods(kube)[:2] == (3, 3)  # six pods: the sum is no longer the total

    replicas.set_weights(Weights.canary_at(75))
    assert pods(kube)[:2] == (1, 3)
    assert annotation(kube) == "4"


def test_a_409_is_read_again_and_a_500_leaves_a_safe_state_a_retry_completes(
    kube: Kube, clients: KubeClients
):
    replicas = router(kube, clients, replicas=4)
    kube.faults.fail("PATCH", "deployments", 409)
    replicas.set_weights(Weights.canary_at(50))
    assert pods(kube)[:2] == (2, 2)

    kube.faults.fail("PATCH", "deployments", 500)
    with pytest.raises(ApplicationError) as failed:
        replicas.set_weights(Weights.canary_at(0))  # the stable's scale-up fails
    assert (failed.value.type, failed.value.non_retryable) == (
        errors.KUBERNETES_REQUEST_FAILED,
        False,
    )
    assert pods(kube)[:2] == (2, 2)  # nothing shrank
    replicas.set_weights(Weights.canary_at(0))  # Temporal's retry
    assert pods(kube)[:2] == (4, 0)


def test_a_canary_that_never_becomes_available_fails_and_the_rollback_still_works(
    kube: Kube, clients: KubeClients, monkeypatch: pytest.MonkeyPatch
):
    kube.controller.break_image("registry.example.com/shop/checkout:v2")
    monkeypatch.setattr(replicas_module, "WAIT_SECONDS", 1)
    replicas = router(kube, clients, replicas=4)
    with pytest.raises(ApplicationError) as waited:
        replicas.set_weights(Weights.canary_at(25))
    assert (waited.value.type, waited.value.non_retryable) == (
        errors.KUBERNETES_REQUEST_FAILED,  # not available yet: Temporal retries
        False,
    )
    kube.controller.settle()  # ... until the canary passes its progress deadline
    with pytest.raises(ApplicationError) as failed:
        replicas.set_weights(Weights.canary_at(25))
    assert (failed.value.type, failed.value.non_retryable) == (
        errors.KUBERNETES_ROLLOUT_FAILED,
        True,
    )
    assert pods(kube)[:2] == (4, 1)  # the stable never shrank for pods that are not there

    replicas.set_weights(Weights.canary_at(0))
    assert pods(kube)[:2] == (4, 0)


def test_a_service_that_cannot_reach_both_sides_is_refused(kube: Kube, clients: KubeClients):
    core = client.CoreV1Api(kube.api_client)
    for name, selector in (("by-app", {"app": "checkout"}), ("both", SHARED)):
        core.create_namespaced_service(
            kube.namespace,
            {"metadata": {"name": name}, "spec": {"selector": selector, "ports": [{"port": 80}]}},
        )
    with pytest.raises(ApplicationError) as refused:
        router(kube, clients, service="by-app").set_weights(Weights.canary_at(25))
    assert refused.value.type == errors.INVALID_SPEC
    assert "checkout-canary" in str(refused.value)
    assert pods(kube)[:2] == (4, 0)

    router(kube, clients, service="both").set_weights(Weights.canary_at(25))
    assert pods(kube)[:2] == (3, 1)


def test_the_set_weight_activity_returns_the_split_the_pods_give(kube: Kube, clients: KubeClients):
    activities = RouterActivities(Clients(kubernetes=clients))
    spec = RouterSpec.model_validate(
        {
            "replicas": {
                "context": kube.context,
                "namespace": kube.namespace,
                "deployment": "checkout",
                "replicas": 3,
            }
        }
    )
    request = SetWeightInput(router=spec, weights=Weights.canary_at(10), key="rollout/step-0")
    applied = ActivityEnvironment().run(activities.set_weight, request)
    assert applied == Weights(stable=67, canary=33)  # one pod of three: the nearest to 10 %
