"""Emergency rollback on Kubernetes under time skipping: v2 promoted over v1 by a canary
(real platform activities against the API server double), then an EmergencyRollback
planned from that run's result the way ``deployflow rollback`` plans it. The team's
Deployment must get v1's recorded pod template back exactly."""

from __future__ import annotations

import contextlib
import uuid
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from temporalio.client import WorkflowFailureError, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from activities.errors import root_cause
from activities.kubernetes.testing import DEFAULT_CONTEXT
from activities.routing.base import Weights
from activities.temporal.activities import WorkflowWatcher
from tests.workflows.kube_cluster import (
    NAMESPACE,
    Cluster,
    cluster,
    finished,
    kube_rollout,
    kube_worker,
    team_deployment,
)
from workflows.rollouts.emergency import EmergencyRollback
from workflows.rollouts.emergency_models import RollbackRequest, RollbackResult
from workflows.rollouts.emergency_plan import Deployed, last_good, recorded_template
from workflows.rollouts.models import RolloutPhase, RolloutResult
from workflows.rollouts.spec import Rollout

QUICK = {"canary": {"steps": [{"setWeight": 50}]}}


async def roll_back(
    env: WorkflowEnvironment, found: Cluster, request: RollbackRequest
) -> WorkflowHandle[Any, RollbackResult]:
    """Run the EmergencyRollback ``request`` to its end; its handle."""
    spec = request.rollout.spec
    watcher = WorkflowWatcher(env.client).await_closed
    async with kube_worker(env, found, [EmergencyRollback], [watcher]) as tq:
        handle = await env.client.start_workflow(
            EmergencyRollback.run,
            request,
            id=f"rollback-{spec.service}-{spec.environment}-{uuid.uuid4().hex[:4]}",
            task_queue=tq,
            result_type=RollbackResult,
        )
        with contextlib.suppress(WorkflowFailureError):
            await handle.result()
        return handle


def scale_canary(found: Cluster, replicas: int) -> None:
    apps = client.AppsV1Api(found.clients.kubernetes.api(DEFAULT_CONTEXT))
    apps.patch_namespaced_deployment_scale(
        "checkout-canary", NAMESPACE, {"spec": {"replicas": replicas}}
    )


def planned(promoted: RolloutResult, spec_version: str = "v2") -> RollbackRequest:
    """What ``deployflow rollback`` asks for after that one promoted run (starters' own
    functions over the run's result, without visibility's lag)."""
    timeline = [Deployed("promoted", promoted.version, "w", "r", stable=promoted.stable)]
    target = last_good(timeline, running=False)
    spec = kube_rollout(QUICK, version=spec_version)
    spec = spec.model_copy(
        update={"spec": spec.spec.model_copy(update={"environment": promoted.environment})}
    )
    return RollbackRequest(
        rollout=spec, target=target, restore=recorded_template(timeline, target), reason="pager"
    )


async def promoted_then_bad(
    env: WorkflowEnvironment, found: Cluster
) -> tuple[Rollout, RolloutResult]:
    """v2 promoted over v1; then someone scales the canary up and sends traffic to it."""
    spec = kube_rollout(QUICK)
    _, promoted = await finished(env, found, spec)
    assert promoted.outcome is RolloutPhase.PROMOTED, promoted.reason
    scale_canary(found, 2)
    nop = spec.spec.router.nop
    assert nop is not None
    with found.clients.nop.lock:
        found.clients.nop.routes(nop).weights = Weights(stable=0, canary=100)
    return spec, promoted


async def test_rollback_after_a_promotion_restores_the_recorded_pod_template_exactly(
    temporal_env: WorkflowEnvironment, tmp_path: Path
):
    async with cluster(tmp_path) as found:
        v1 = found.deployment()
        spec, promoted = await promoted_then_bad(temporal_env, found)
        assert found.deployment()["spec"]["template"] != v1["spec"]["template"]
        assert promoted.stable is not None
        assert promoted.stable.template == v1["spec"]["template"]
        assert found.deployment("checkout-canary")["spec"]["replicas"] == 2

        request = planned(promoted)
        assert request.target == "v1"
        result = await (await roll_back(temporal_env, found, request)).result()

        assert result.reason.startswith("v1 is live ("), result.reason
        stable = found.deployment()
        assert stable["spec"]["template"] == v1["spec"]["template"]  # image, env, annotations
        assert stable["spec"]["strategy"] == v1["spec"]["strategy"]
        assert stable["spec"]["progressDeadlineSeconds"] == v1["spec"]["progressDeadlineSeconds"]
        assert stable["status"]["updatedReplicas"] == stable["status"]["availableReplicas"] == 3
        assert found.deployment("checkout-canary")["spec"]["replicas"] == 0
        assert found.weights(spec).stable == 100
        kinds = [e.kind for e in result.events]
        assert kinds.index("weights") < kinds.index("restore")  # traffic to stable first

        again = await (await roll_back(temporal_env, found, request)).result()
        assert again.reason == "v1 is live: nothing more to do"
        assert found.deployment()["metadata"]["generation"] == stable["metadata"]["generation"]


async def test_rollback_refuses_a_deployment_deleted_and_created_again_since_it_was_recorded(
    temporal_env: WorkflowEnvironment, tmp_path: Path
):
    """Someone else's object now has the name: its template is not ours to put back."""
    async with cluster(tmp_path) as found:
        _, promoted = await promoted_then_bad(temporal_env, found)
        apps = client.AppsV1Api(found.clients.kubernetes.api(DEFAULT_CONTEXT))
        apps.delete_namespaced_deployment("checkout", NAMESPACE)
        apps.create_namespaced_deployment(NAMESPACE, team_deployment(replicas=2))
        found.server.controller.settle()
        recreated = found.deployment()
        with pytest.raises(WorkflowFailureError) as failed:
            await (await roll_back(temporal_env, found, planned(promoted))).result()
        cause = root_cause(failed.value)
        assert cause.type == "KubernetesObjectReplaced"
        assert promoted.stable is not None
        uids = f"(uid {recreated['metadata']['uid']}, recorded {promoted.stable.uid})"
        assert uids in cause.message
        after = found.deployment()
        assert after["metadata"]["generation"] == recreated["metadata"]["generation"]
        assert after["spec"]["template"] == recreated["spec"]["template"]


async def test_rollback_without_a_recorded_template_changes_nothing_and_says_why(
    temporal_env: WorkflowEnvironment, tmp_path: Path
):
    async with cluster(tmp_path) as found:
        before = found.deployment()
        spec = kube_rollout(QUICK)
        request = RollbackRequest(rollout=spec, target="v0")
        with pytest.raises(WorkflowFailureError) as failed:
            await (await roll_back(temporal_env, found, request)).result()
        assert "no recorded pod template of v0" in str(failed.value.cause)
        assert found.deployment()["metadata"]["generation"] == before["metadata"]["generation"]
