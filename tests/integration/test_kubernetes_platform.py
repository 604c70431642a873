"""The Kubernetes platform through the official client over real HTTP, against the API
server double (or a real cluster with DEPLOYFLOW_KUBE_REAL=1): stored state, the requests
made, and faults (500, 403, 404, 409, a dropped watch) showing a retry is safe."""

from __future__ import annotations

import copy
import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from kubernetes import client
from temporalio.exceptions import ApplicationError

from activities.errors import (
    INVALID_SPEC,
    KUBERNETES_FORBIDDEN,
    KUBERNETES_NOT_CONFIGURED,
    KUBERNETES_OBJECT_FOREIGN,
    KUBERNETES_OBJECT_MISSING,
    KUBERNETES_OBJECT_REPLACED,
    KUBERNETES_REQUEST_FAILED,
    KUBERNETES_ROLLOUT_FAILED,
)
from activities.kubeconfig import KubeClients
from activities.platforms.deployments import RESTARTED_AT, with_image
from activities.platforms.kubernetes import KubernetesDeployments
from activities.platforms.spec import DeploymentTarget
from tests.fixtures.kube import Kube
from tests.workflows.kube_cluster import team_deployment


@pytest.fixture
def apps(kube: Kube) -> client.AppsV1Api:
    return client.AppsV1Api(kube.api_client)


@pytest.fixture
def platform(kube: Kube, apps: client.AppsV1Api) -> KubernetesDeployments:
    """The team's Deployment rolled out, and the platform over the worker's own client."""
    apps.create_namespaced_deployment(kube.namespace, team_deployment(deadline=120))
    if not kube.real:
        kube.controller.auto_advance()
    clients = KubeClients(kubeconfig=str(kube.kubeconfig))
    target = DeploymentTarget(name="checkout", namespace=kube.namespace, context=kube.context)
    deployments = KubernetesDeployments(target, clients.api(kube.context))
    deployments.wait("checkout")
    return deployments


def stored(kube: Kube, name: str) -> dict[str, Any]:
    response = client.AppsV1Api(kube.api_client).read_namespaced_deployment(
        name, kube.namespace, _preload_content=False
    )
    found: dict[str, Any] = json.loads(response.data)  # raw: every field, as stored
    return found


def writes(kube: Kube) -> list[tuple[str, str, str]]:
    return [
        (r.method, r.path.rsplit("/", 1)[-1], r.content_type)
        for r in kube.requests()
        if r.method in ("POST", "PUT", "PATCH")
    ]


def test_record_keeps_the_exact_template_and_the_canary_runs_beside_it(
    kube: Kube, platform: KubernetesDeployments
):
    before = stored(kube, "checkout")
    record = platform.record()
    assert record.template == before["spec"]["template"]
    assert (record.replicas, record.container, record.version) == (3, "app", "v1")

    state = platform.apply_canary(record, "v2", 1, "rollout-checkout-test")

    assert (state.changed, state.available_replicas) == (True, 1)
    canary = stored(kube, "checkout-canary")
    assert canary["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": "deployflow",
        "deployflow.io/role": "canary",
        "deployflow.io/stable": "checkout",
    }
    assert canary["metadata"]["ownerReferences"][0]["uid"] == before["metadata"]["uid"]
    assert canary["spec"]["selector"] == {
        "matchLabels": {"app": "checkout-canary", "deployflow.io/role": "canary"}
    }
    containers = canary["spec"]["template"]["spec"]["containers"]
    assert [(c["name"], c["image"]) for c in containers] == [
        ("app", "registry.example.com/shop/checkout:v2"),
        ("proxy", "envoy:1.30"),
    ]
    assert stored(kube, "checkout")["spec"]["template"] == before["spec"]["template"]
    if not kube.real:
        assert writes(kube)[-1:] == [("POST", "deployments", "application/json")]
        # A retry (the worker died after the create) changes nothing and only waits.
        count = len(writes(kube))
        assert platform.apply_canary(record, "v2", 1, "rollout-checkout-test").changed is False
        assert len(writes(kube)) == count


def test_promotion_then_rollback_restores_the_recorded_template_exactly(
    kube: Kube, platform: KubernetesDeployments
):
    record = platform.record()
    new = with_image(record.template, "app", "registry.example.com/shop/checkout:v2", "v2")

    promoted = platform.set_stable(new, None, None, "rollout-checkout-test")
    assert (promoted.changed, promoted.updated_replicas, promoted.available_replicas) == (
        True,
        3,
        3,
    )
    assert stored(kube, "checkout")["spec"]["template"] == new
    # kubectl, against the same server, agrees it has rolled out.
    status = kube.kubectl("rollout", "status", "deployment/checkout", "--timeout=30s")
    assert status.returncode == 0, status.stderr
    assert 'deployment "checkout" successfully rolled out' in status.stdout

    restored = platform.set_stable(record.template, record.strategy, 120, "rollout-checkout-test")
    assert restored.changed
    live = stored(kube, "checkout")
    assert live["spec"]["template"] == record.template
    assert live["metadata"]["annotations"]["deployflow.io/rollout"] == "rollout-checkout-test"
    assert platform.set_stable(record.template, record.strategy, 120, "r").changed is False


def test_a_template_goes_back_only_onto_the_deployment_it_was_recorded_from(
    kube: Kube, apps: client.AppsV1Api, platform: KubernetesDeployments
):
    record = platform.record()
    # One image for every version (as in the demo): the annotation tells them apart.
    new = with_image(record.template, "app", record.image, "v2")
    platform.set_stable(new, None, None, "rollout-checkout-test", uid=record.uid)
    assert (record.version, platform.record().version) == ("v1", "v2")

    apps.delete_namespaced_deployment("checkout", kube.namespace)
    apps.create_namespaced_deployment(kube.namespace, team_deployment(replicas=2))
    before = writes(kube)
    with pytest.raises(ApplicationError) as refused:
        platform.set_stable(record.template, record.strategy, 120, "rollback", uid=record.uid)
    assert refused.value.type == KUBERNETES_OBJECT_REPLACED
    assert refused.value.non_retryable
    assert f"recorded {record.uid}" in refused.value.message
    assert writes(kube) == before  # nothing sent
    assert stored(kube, "checkout")["spec"]["replicas"] == 2


def test_a_wait_stops_when_the_deployment_is_replaced_under_it(
    kube: Kube, apps: client.AppsV1Api, platform: KubernetesDeployments
):
    if kube.real:
        pytest.skip("needs the double's controller (a rollout that never finishes)")
    record = platform.record()
    kube.controller.break_image("registry.example.com/shop/checkout:v9")
    new = with_image(record.template, "app", "registry.example.com/shop/checkout:v9", "v9")
    with ThreadPoolExecutor(1) as pool:
        # A deadline the simulated clock does not reach: only the replacement ends it.
        waiting = pool.submit(platform.set_stable, new, None, 100_000, "r", record.uid)
        ends = time.monotonic() + 30
        while ("PUT", "checkout", "application/json") not in writes(kube):
            assert time.monotonic() < ends, "the update was never sent"
            assert not waiting.done(), waiting.result()
            time.sleep(0.05)
        apps.delete_namespaced_deployment("checkout", kube.namespace)
        apps.create_namespaced_deployment(kube.namespace, team_deployment(replicas=2))
        with pytest.raises(ApplicationError) as refused:
            waiting.result(timeout=30)
    assert refused.value.type == KUBERNETES_OBJECT_REPLACED
    assert f"recorded {record.uid}" in refused.value.message
    assert stored(kube, "checkout")["spec"]["template"]["metadata"].get("annotations") == {
        "team": "shop"
    }


def test_a_409_is_read_again_and_reapplied_never_overwriting_the_other_change(
    kube: Kube, apps: client.AppsV1Api, platform: KubernetesDeployments
):
    record = platform.record()
    new = with_image(record.template, "app", "registry.example.com/shop/checkout:v2", "v2")
    # Someone scales the Deployment between our read and our write: the PUT gets 409.
    kube.faults.fail("PUT", "deployments", 409, message="the object has been modified")
    apps.patch_namespaced_deployment_scale("checkout", kube.namespace, {"spec": {"replicas": 5}})

    state = platform.set_stable(new, None, None, "r")

    assert state.changed
    live = stored(kube, "checkout")
    assert live["spec"]["replicas"] == 5  # their change is kept
    assert live["spec"]["template"] == new  # ours is applied
    puts = [w for w in writes(kube) if w[0] == "PUT"]
    assert len(puts) == 2


@pytest.mark.parametrize(
    ("status", "error", "retryable"),
    [
        (500, KUBERNETES_REQUEST_FAILED, True),
        (503, KUBERNETES_REQUEST_FAILED, True),
        (403, KUBERNETES_FORBIDDEN, False),
        (422, INVALID_SPEC, False),
    ],
)
def test_a_failed_write_says_whether_to_retry_and_a_retry_is_safe(
    kube: Kube, platform: KubernetesDeployments, status: int, error: str, retryable: bool
):
    record = platform.record()
    new = with_image(record.template, "app", "registry.example.com/shop/checkout:v2", "v2")
    kube.faults.fail("PUT", "deployments", status)

    with pytest.raises(ApplicationError) as caught:
        platform.set_stable(new, None, None, "r")

    assert (caught.value.type, caught.value.non_retryable) == (error, not retryable)
    assert "checkout" in str(caught.value)
    assert stored(kube, "checkout")["spec"]["template"] == record.template  # nothing half-applied
    state = platform.set_stable(new, None, None, "r")  # Temporal's retry
    assert state.changed
    assert stored(kube, "checkout")["spec"]["template"] == new


def test_a_500_on_a_read_is_retryable(kube: Kube, platform: KubernetesDeployments):
    kube.faults.fail("GET", "deployments", 500)
    with pytest.raises(ApplicationError) as caught:
        platform.record()
    assert (caught.value.type, caught.value.non_retryable) == (KUBERNETES_REQUEST_FAILED, False)
    assert platform.record().version == "v1"


def test_a_dropped_watch_is_resumed_from_a_fresh_read(kube: Kube, platform: KubernetesDeployments):
    record = platform.record()
    kube.faults.drop_watch_after(1)
    state = platform.set_stable(
        with_image(record.template, "app", "registry.example.com/shop/checkout:v2", "v2"),
        None,
        None,
        "r",
    )
    assert state.available_replicas == 3
    watches = [r for r in kube.requests() if r.params.get("watch") in ("true", "1", "True")]
    assert len(watches) >= 2
    assert all(r.params.get("timeoutSeconds") for r in watches)
    assert all(r.params.get("resourceVersion") for r in watches)


def test_a_stuck_rollout_fails_non_retryably_naming_the_deployment(
    kube: Kube, platform: KubernetesDeployments
):
    record = platform.record()
    kube.controller.break_image("registry.example.com/shop/checkout:v9")
    started = time.monotonic()
    with pytest.raises(ApplicationError) as caught:
        platform.set_stable(
            with_image(record.template, "app", "registry.example.com/shop/checkout:v9", "v9"),
            None,
            20,
            "r",
        )
    assert caught.value.type == KUBERNETES_ROLLOUT_FAILED
    assert caught.value.non_retryable
    assert "deployment 'checkout' exceeded its progress deadline" in str(caught.value)
    assert time.monotonic() - started < 30  # the simulated clock, not the real one, waited


def test_a_canary_name_taken_by_a_deployment_deployflow_does_not_own_is_refused(
    kube: Kube, apps: client.AppsV1Api, platform: KubernetesDeployments
):
    theirs = team_deployment()
    theirs["metadata"]["name"] = "checkout-canary"
    apps.create_namespaced_deployment(kube.namespace, theirs)
    before = stored(kube, "checkout-canary")
    with pytest.raises(ApplicationError) as caught:
        platform.apply_canary(platform.record(), "v2", 1, "r")
    assert caught.value.type == KUBERNETES_OBJECT_FOREIGN
    assert caught.value.non_retryable
    assert stored(kube, "checkout-canary")["spec"] == before["spec"]  # left alone


def test_scale_and_restart_are_declarative(kube: Kube, platform: KubernetesDeployments):
    assert platform.scale("canary", 0).changed is False  # no canary yet: already at zero
    platform.apply_canary(platform.record(), "v2", 2, "r")
    assert platform.scale("canary", 0).changed
    assert stored(kube, "checkout-canary")["spec"]["replicas"] == 0
    if not kube.real:
        scale = [r for r in kube.requests() if r.path.endswith("/scale") and r.method == "PATCH"]
        assert [(r.content_type, r.body) for r in scale] == [
            ("application/merge-patch+json", {"spec": {"replicas": 0}})
        ]

    at = "2026-12-02T00:00:00Z"
    assert platform.restart("stable", at).changed
    template = stored(kube, "checkout")["spec"]["template"]
    assert template["metadata"]["annotations"][RESTARTED_AT] == at
    assert platform.restart("stable", at).changed is False


def test_pause_and_resume_are_declarative_merge_patches_of_spec_paused(
    kube: Kube, platform: KubernetesDeployments
):
    assert platform.pause("stable", True).changed
    assert stored(kube, "checkout")["spec"]["paused"] is True
    assert platform.pause("stable", True).changed is False  # a retry writes nothing
    assert platform.pause("stable", False).changed
    assert stored(kube, "checkout")["spec"].get("paused") is False
    if not kube.real:
        patches = [r for r in kube.requests() if r.method == "PATCH"]
        assert [(r.content_type, r.body) for r in patches] == [
            ("application/merge-patch+json", {"spec": {"paused": True}}),
            ("application/merge-patch+json", {"spec": {"paused": False}}),
        ]


def test_a_missing_deployment_and_an_unknown_context_are_named(kube: Kube):
    clients = KubeClients(kubeconfig=str(kube.kubeconfig))
    target = DeploymentTarget(name="nothere", namespace=kube.namespace, context=kube.context)
    with pytest.raises(ApplicationError) as caught:
        KubernetesDeployments(target, clients.api(kube.context)).record()
    assert caught.value.type == KUBERNETES_OBJECT_MISSING
    assert f"{kube.context}/{kube.namespace}/deployment/nothere not found" in str(caught.value)

    with pytest.raises(ApplicationError) as unknown:
        clients.api("prod-z")
    assert unknown.value.type == KUBERNETES_NOT_CONFIGURED
    assert unknown.value.non_retryable
    assert "context 'prod-z'" in str(unknown.value)


def test_unknown_fields_survive_the_round_trip(kube: Kube, platform: KubernetesDeployments):
    """The typed client would drop a field it does not know; raw JSON keeps it."""
    record = platform.record()
    template = copy.deepcopy(record.template)
    template["spec"]["containers"][0]["resizePolicyOfTheFuture"] = [{"x": 1}]
    platform.set_stable(template, None, None, "r")
    assert stored(kube, "checkout")["spec"]["template"] == template
