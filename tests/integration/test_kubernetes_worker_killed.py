"""A worker SIGKILLed while it waits for the canary Deployment's rollout: the server times
the attempt out on its heartbeat, the next worker retries it, finds the canary made (one
create, never two) and the rollout ends promoted."""

from __future__ import annotations

import asyncio
import os
import uuid

from kubernetes import client
from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment

from activities.clients import Clients
from activities.kubeconfig import KubeClients
from tests.fixtures.cli import spawn
from tests.fixtures.harness import worker
from tests.fixtures.kube import Kube
from tests.workflows.kube_cluster import NAMESPACE, kube_rollout, team_deployment
from workers.main import activities_with
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
    queue = f"it-{uuid.uuid4().hex[:8]}"
    address = temporal_env.client.service_client.config.target_host
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": address,
        "DEPLOYFLOW_TASK_QUEUE": queue,
        "KUBECONFIG": str(kube.kubeconfig),
    }
    spec = kube_rollout({"canary": {"steps": [{"setWeight": 50}]}})
    assert kube.server is not None
    loop, changed = asyncio.get_running_loop(), asyncio.Event()
    unsubscribe = kube.server.store.subscribe(lambda: loop.call_soon_threadsafe(changed.set))
    first = await spawn(env, "worker")
    try:
        handle = await temporal_env.client.start_workflow(
            workflow_type(spec),
            spec,
            id=spec.workflow_id,
            task_queue=queue,
            result_type=RolloutResult,
        )
        async with asyncio.timeout(60):  # until the first worker has created the canary
            while not canary_creates(kube):
                await changed.wait()  # the double's store changed: look again
                changed.clear()
    finally:
        unsubscribe()
        first.kill()  # SIGKILL: no cleanup, the attempt is lost with the process
        await first.wait()

    controller.auto_advance()
    clients = Clients(kubernetes=KubeClients(kubeconfig=str(kube.kubeconfig)))
    async with worker(
        temporal_env, list(BY_STRATEGY.values()), activities_with(clients), task_queue=queue
    ):
        result: RolloutResult = await handle.result()

    assert result.outcome is RolloutPhase.PROMOTED, result.reason
    assert len(canary_creates(kube)) == 1
    history = await handle.fetch_history()
    attempts = [
        e.activity_task_started_event_attributes.attempt
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
    ]
    assert max(attempts) == 2  # the killed attempt, then the retry that only waited
    canary = apps.read_namespaced_deployment("checkout-canary", NAMESPACE)
    assert canary.spec.replicas == 0
