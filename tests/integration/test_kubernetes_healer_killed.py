"""A worker SIGKILLed while the SelfHealer waits for a restarted Deployment: the server
times the restart out on its heartbeat, the next worker retries it with the same
``restartedAt`` (the healer's clock), finds the restart made (one PATCH, one new
generation) and only waits; the healer then verifies the pods ready."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from kubernetes import client
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from tests.fixtures.kube import Kube
from tests.integration.kube_kill import activity_attempts, killed_when, replacement_worker
from tests.workflows.kube_cluster import NAMESPACE, team_deployment
from tests.workflows.test_kubernetes_monitor import WHERE, deployment_monitor
from tests.workflows.test_monitor import healer_when
from workflows.monitors.healer import SelfHealer
from workflows.monitors.models import (
    Finding,
    HealerInput,
    HealerStatus,
    HealReport,
    healer_workflow_id,
)


def restarts(kube: Kube) -> list[object]:
    return [
        r
        for r in kube.requests()
        if r.method == "PATCH"
        and r.path.endswith("/deployments/checkout")
        and "kubectl.kubernetes.io/restartedAt" in str(r.body)
    ]


async def test_a_worker_killed_mid_restart_is_retried_without_a_second_restart(
    temporal_env: WorkflowEnvironment, kube: Kube
):
    controller = kube.controller  # the simulation (skips on a real cluster)
    apps = client.AppsV1Api(kube.api_client)
    apps.create_namespaced_deployment(NAMESPACE, team_deployment())
    controller.settle()
    controller.fail_readiness(NAMESPACE, "checkout")
    generation = apps.read_namespaced_deployment("checkout", NAMESPACE).metadata.generation
    monitor = deployment_monitor(verify_after="1s")
    unready = Finding(kind="unresponsive", message="unready", deployments=[WHERE])
    report = HealReport(run_id="monitor-run-1", at=datetime.now(UTC), findings=[unready])

    async def start(queue: str) -> WorkflowHandle[Any, HealerStatus]:
        return await temporal_env.client.start_workflow(
            SelfHealer.run,
            HealerInput(monitor=monitor, report=report),
            id=healer_workflow_id(monitor.spec.service, monitor.spec.environment),
            task_queue=queue,
        )

    # Killed once the first worker has sent the restart and waits for the new pods.
    queue, handle = await killed_when(temporal_env, kube, start, lambda: bool(restarts(kube)))

    async with replacement_worker(temporal_env, kube, queue, [SelfHealer]):
        healed = await healer_when(
            handle, lambda s: any(e.kind == "verified" for e in s.timeline), timeout=90
        )
        await handle.terminate("test over")

    assert len(restarts(kube)) == 1
    after = apps.read_namespaced_deployment("checkout", NAMESPACE)
    assert after.metadata.generation == generation + 1
    assert after.status.available_replicas == 3
    assert len(healed.restarts) == 1
    attempts = activity_attempts(await handle.fetch_history())
    assert max(attempts) == 2  # the killed attempt, then the retry that only waited
