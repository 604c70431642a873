"""A worker SIGKILLed while it waits for the canary Deployment's rollout: the server times
the attempt out on its heartbeat, the next worker retries it, finds the canary made (one
create, never two) and the rollout ends promoted."""

from __future__ import annotations

from typing import Any

from kubernetes import client
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from tests.fixtures.kube import Kube
from tests.integration.kube_kill import activity_attempts, killed_when, replacement_worker
from tests.workflows.kube_cluster import NAMESPACE, kube_rollout, team_deployment
from workflows.rollouts.models import RolloutPhase, RolloutResult
from workflows.rollouts.registry import BY_STRATEGY, workflow_type


def canary_creates(kube: Kube) -> list[object]:
    return [
        r
        for r in kube.requests()
        if r.method == "POST" and r.body.get("metadata", {}).get("name") == "checkout-canary"
    ]


async def test_a_worker_killed_mid_canary_rollout_is_retried_without_a_second_canary(
    temporal_env: WorkflowEnvironment, kube: Kube
):
    controller = kube.controller  # the simulation (skips on a real cluster)
    apps = client.AppsV1Api(kube.api_client)
    apps.create_namespaced_deployment(NAMESPACE, team_deployment())
    controller.settle()  # the stable one rolls out; the canary will wait until we advance
    spec = kube_rollout({"canary": {"steps": [{"setWeight": 50}]}})

    async def start(queue: str) -> WorkflowHandle[Any, RolloutResult]:
        return await temporal_env.client.start_workflow(
            workflow_type(spec),
            spec,
            id=spec.workflow_id,
            task_queue=queue,
            result_type=RolloutResult,
        )

    # Killed once the first worker has created the canary and waits for it to roll out.
    queue, handle = await killed_when(temporal_env, kube, start, lambda: bool(canary_creates(kube)))

    async with replacement_worker(temporal_env, kube, queue, list(BY_STRATEGY.values())):
        result: RolloutResult = await handle.result()

    assert result.outcome is RolloutPhase.PROMOTED, result.reason
    assert len(canary_creates(kube)) == 1
    history = await handle.fetch_history()
    attempts = activity_attempts(history)
    assert max(attempts) == 2  # the killed attempt, then the retry that only waited
    canary = apps.read_namespaced_deployment("checkout-canary", NAMESPACE)
    assert canary.spec.replicas == 0
