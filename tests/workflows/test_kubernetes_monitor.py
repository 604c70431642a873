"""A ServiceMonitor watching a Kubernetes Deployment, against the API server double under
time skipping: pods that stop being ready are found by the monitor, restarted by the
SelfHealer through the API (``kubectl rollout restart``) and verified ready again; an API
server that cannot answer is an inconclusive check, never a restart."""

from __future__ import annotations

import uuid
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from activities.kubernetes.testing import DEFAULT_CONTEXT
from tests.fixtures.harness import worker
from tests.workflows.kube_cluster import NAMESPACE, Cluster, cluster
from tests.workflows.test_monitor import Intake, healer_of, healer_when
from workflows.monitors.healer import SelfHealer
from workflows.monitors.models import HealerStatus, MonitorResult
from workflows.monitors.monitor import ServiceMonitorRun
from workflows.monitors.spec import ServiceMonitor, parse_monitor

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
WHERE = f"{DEFAULT_CONTEXT}/{NAMESPACE}/deployment/checkout"
RUNBOOK = {
    "apiVersion": "deployflow/v1",
    "kind": "Runbook",
    "metadata": {"name": "checkout-unhealthy"},
    "spec": {"steps": [{"page": {}}]},
}


def deployment_monitor(verify_after: str = "30s") -> ServiceMonitor:
    document = {
        "apiVersion": "deployflow/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": "checkout"},
        "spec": {
            "service": "checkout",
            "environment": f"k{uuid.uuid4().hex[:8]}",
            "schedule": {"offHours": {"every": "15m"}},
            "deployments": [
                {"name": "checkout", "namespace": NAMESPACE, "context": DEFAULT_CONTEXT}
            ],
            "selfHealing": {"maxRestarts": 2, "per": "1h", "verifyAfter": verify_after},
            "incident": {"runbook": "checkout-unhealthy"},
        },
    }
    return parse_monitor([document, RUNBOOK])


def monitor_worker(
    env: WorkflowEnvironment, found: Cluster, intake: Intake
) -> AbstractAsyncContextManager[str]:
    activities = [*found.activities(), *intake.activities()]
    return worker(env, [ServiceMonitorRun, SelfHealer], activities)


async def run_monitor(env: WorkflowEnvironment, tq: str, m: ServiceMonitor) -> MonitorResult:
    result: MonitorResult = await env.client.execute_workflow(
        ServiceMonitorRun.run, m, id=f"monitor-run-{uuid.uuid4().hex}", task_queue=tq
    )
    return result


@dataclass
class Healed:
    """What the unready-pods scenario saw, and its workflows (for recording histories)."""

    healthy: MonitorResult
    unhealthy: MonitorResult
    again: MonitorResult
    healer: HealerStatus
    before: dict[str, Any]
    after: dict[str, Any]
    failed_pods: list[str]
    unhealthy_run: WorkflowHandle[Any, Any]
    healer_run: WorkflowHandle[Any, Any]


async def unready_then_healed(env: WorkflowEnvironment, found: Cluster, intake: Intake) -> Healed:
    """A healthy run; the pods fail readiness; a run finds it and the healer restarts the
    Deployment and verifies it; a run finds it healthy; the healer ends (a quiet window)."""
    m = deployment_monitor()
    async with monitor_worker(env, found, intake) as tq:
        healthy = await run_monitor(env, tq, m)
        before = found.deployment()
        failed = found.server.controller.fail_readiness(NAMESPACE, "checkout")
        run = await env.client.start_workflow(
            ServiceMonitorRun.run, m, id=f"monitor-run-{uuid.uuid4().hex}", task_queue=tq
        )
        unhealthy: MonitorResult = await run.result()
        healer = healer_of(env, m)
        healed: HealerStatus = await healer_when(
            healer, lambda s: any(e.kind == "verified" for e in s.timeline), timeout=60
        )
        after = found.deployment()
        again = await run_monitor(env, tq, m)
        await healer.result()
    return Healed(healthy, unhealthy, again, healed, before, after, failed, run, healer)


async def test_unready_pods_are_found_restarted_through_the_api_and_ready_again(
    temporal_env: WorkflowEnvironment, tmp_path: Path
):
    intake = Intake()
    async with cluster(tmp_path) as found:
        seen = await unready_then_healed(temporal_env, found, intake)
    healthy, unhealthy, again, healed = seen.healthy, seen.unhealthy, seen.again, seen.healer
    before, after, failed = seen.before, seen.after, seen.failed_pods
    assert healthy.healthy
    assert healthy.findings == []
    assert len(failed) == 3
    assert not unhealthy.healthy
    [finding] = unhealthy.findings
    assert finding.kind == "unresponsive"
    assert finding.deployments == [WHERE]
    assert finding.message.startswith(f"unready: {WHERE} (0 of 3 replicas available")
    assert unhealthy.actions[0].startswith("started healer-checkout-")
    assert len(healed.restarts) == 1
    restarted = [e.message for e in healed.timeline if e.kind == "restart"]
    assert restarted == [
        f"restarted {WHERE}: deployment 'checkout' successfully rolled out ({finding.message})"
    ]
    assert RESTARTED_AT in after["spec"]["template"]["metadata"]["annotations"]
    assert after["metadata"]["generation"] == before["metadata"]["generation"] + 1
    assert after["status"]["availableReplicas"] == 3
    assert again.healthy
    assert intake.firing() == []  # restarting helped: nobody paged


async def test_a_restart_that_does_not_bring_the_pods_back_opens_an_incident(
    temporal_env: WorkflowEnvironment, tmp_path: Path
):
    """The restarted pods come back unready too (the image broke): verification fails."""
    m = deployment_monitor()
    intake = Intake()
    async with cluster(tmp_path) as found, monitor_worker(temporal_env, found, intake) as tq:
        found.server.controller.fail_readiness(NAMESPACE, "checkout")
        found.server.controller.break_image(found.deployment()["spec"]["template"]["spec"][
            "containers"][0]["image"])  # fmt: skip
        await run_monitor(temporal_env, tq, m)
        healer = healer_of(temporal_env, m)
        escalated = await healer_when(healer, lambda s: s.incidents != [], timeout=60)
        await healer.terminate("test over")
    [incident] = intake.firing()
    assert incident.startswith(f"restart of {WHERE} failed: ")
    assert "exceeded its progress deadline" in incident
    assert len(escalated.restarts) == 1


async def test_an_api_server_that_answers_500_once_is_retried_and_403_is_inconclusive(
    temporal_env: WorkflowEnvironment, tmp_path: Path
):
    m = deployment_monitor()
    intake = Intake()
    async with cluster(tmp_path) as found, monitor_worker(temporal_env, found, intake) as tq:
        found.server.controller.fail_readiness(NAMESPACE, "checkout")
        faults = found.server.double.faults
        faults.fail("GET", "deployments", 403, message="deployments is forbidden")
        forbidden = await run_monitor(temporal_env, tq, m)
        faults.fail("GET", "deployments", 500, times=2)
        unanswered = await run_monitor(temporal_env, tq, m)
        generation = found.deployment()["metadata"]["generation"]
        faults.fail("GET", "deployments", 500)
        retried = await run_monitor(temporal_env, tq, m)
        healer = healer_of(temporal_env, m)
        await healer_when(healer, lambda s: any(e.kind == "verified" for e in s.timeline))
        await healer.terminate("test over")
    [finding] = forbidden.findings
    assert finding.kind == "inconclusive"
    assert finding.message.startswith(f"{WHERE}: cannot be checked: ")
    assert "403" in finding.message
    assert forbidden.healthy  # nothing judged: neither restarted nor paged
    assert forbidden.actions == []
    [finding] = unanswered.findings
    assert finding.kind == "inconclusive"
    assert "500" in finding.message
    assert generation == 1  # no restart from an unanswered check
    assert [f.kind for f in retried.findings] == ["unresponsive"]
    assert intake.opened == []
