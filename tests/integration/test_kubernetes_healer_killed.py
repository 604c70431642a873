"""A worker SIGKILLed while the SelfHealer waits for a restarted Deployment: the server
times the restart out on its heartbeat, the next worker retries it with the same
``restartedAt`` (the healer's clock), finds the restart made (one PATCH, one new
generation) and only waits; the healer then verifies the pods ready."""

from __future__ import annotations

import asyncio
import os
import uuid
from datetime import UTC, datetime

from kubernetes import client
from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment

from activities.clients import Clients
from activities.kubeconfig import KubeClients
from tests.fixtures.cli import spawn
from tests.fixtures.harness import worker
from tests.fixtures.kube import Kube
from tests.workflows.kube_cluster import NAMESPACE, team_deployment
from tests.workflows.test_kubernetes_monitor import WHERE, deployment_monitor
from tests.workflows.test_monitor import healer_when
from workers.main import activities_with
from workflows.monitors.healer import SelfHealer
from workflows.monitors.models import Finding, HealerInput, HealReport, healer_workflow_id


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
    queue = f"it-{uuid.uuid4().hex[:8]}"
    address = temporal_env.client.service_client.config.target_host
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": address,
        "DEPLOYFLOW_TASK_QUEUE": queue,
        "KUBECONFIG": str(kube.kubeconfig),
    }
    monitor = deployment_monitor(verify_after="1s")
    unready = Finding(kind="unresponsive", message="unready", deployments=[WHERE])
    report = HealReport(run_id="monitor-run-1", at=datetime.now(UTC), findings=[unready])
    assert kube.server is not None
    loop, changed = asyncio.get_running_loop(), asyncio.Event()
    unsubscribe = kube.server.store.subscribe(lambda: loop.call_soon_threadsafe(changed.set))
    first = await spawn(env, "worker")
    try:
        handle = await temporal_env.client.start_workflow(
            SelfHealer.run,
            HealerInput(monitor=monitor, report=report),
            id=healer_workflow_id(monitor.spec.service, monitor.spec.environment),
            task_queue=queue,
        )
        async with asyncio.timeout(60):  # until the first worker has sent the restart
            while not restarts(kube):
                await changed.wait()  # the double's store changed: look again
                changed.clear()
    finally:
        unsubscribe()
        first.kill()  # SIGKILL: no cleanup, the attempt is lost with the process
        await first.wait()

    controller.auto_advance()
    clients = Clients(kubernetes=KubeClients(kubeconfig=str(kube.kubeconfig)))
    async with worker(temporal_env, [SelfHealer], activities_with(clients), task_queue=queue):
        healed = await healer_when(
            handle, lambda s: any(e.kind == "verified" for e in s.timeline), timeout=90
        )
        await handle.terminate("test over")
    clients.kubernetes.close()

    assert len(restarts(kube)) == 1
    after = apps.read_namespaced_deployment("checkout", NAMESPACE)
    assert after.metadata.generation == generation + 1
    assert after.status.available_replicas == 3
    assert len(healed.restarts) == 1
    history = await handle.fetch_history()
    attempts = [
        e.activity_task_started_event_attributes.attempt
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
    ]
    assert max(attempts) == 2  # the killed attempt, then the retry that only waited
