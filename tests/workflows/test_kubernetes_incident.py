"""An incident's ``restart`` step on Kubernetes restarts the team's Deployment through the
API (``kubectl rollout restart``: a new pod template annotation, hence new pods), against
the API server double, under time skipping."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from activities.kubernetes.testing import DEFAULT_CONTEXT
from activities.platforms.activities import PlatformActivities
from tests.fixtures.harness import worker
from tests.workflows.incident_harness import (
    Notifiers,
    notification,
    open_incident,
    runbook,
    status_when,
)
from tests.workflows.kube_cluster import NAMESPACE, Cluster, cluster
from workflows.core.verbs import OperatorInput
from workflows.incidents.models import IncidentStatus
from workflows.incidents.runbook import IncidentRunbook
from workflows.incidents.spec import runbook_problems

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
DEPLOYMENT = {"name": "checkout", "namespace": NAMESPACE, "context": DEFAULT_CONTEXT}


async def restarted(
    env: WorkflowEnvironment, found: Cluster
) -> tuple[WorkflowHandle[Any, Any], IncidentStatus]:
    """An incident whose runbook restarts the Deployment, resolved by alice after it did."""
    target = {"platform": {"kubernetes": {"deployment": DEPLOYMENT}}}
    book = runbook([{"restart": {}}], service="checkout", target=target)
    assert runbook_problems(book) == []
    stubs = Notifiers()
    task_queue = f"tq-{uuid.uuid4().hex}"
    async with worker(
        env,
        [IncidentRunbook],
        [*stubs.activities(), PlatformActivities(found.clients).restart_workload],
        task_queue=task_queue,
    ):
        alert = notification(group=f"g-{uuid.uuid4().hex[:6]}")
        handle = await open_incident(env, task_queue, book, alert)
        status = await status_when(handle, lambda s: s.restarts == 1)
        await handle.execute_update(IncidentRunbook.resolve, OperatorInput(by="alice"))
        await handle.result()
    return handle, status


async def test_a_restart_step_on_kubernetes_restarts_the_deployment(
    temporal_env: WorkflowEnvironment, tmp_path: Path
):
    async with cluster(tmp_path) as found:
        before = found.deployment()
        _, status = await restarted(temporal_env, found)
        after = found.deployment()
        assert RESTARTED_AT not in (before["spec"]["template"]["metadata"].get("annotations") or {})
        assert RESTARTED_AT in after["spec"]["template"]["metadata"]["annotations"]
        assert after["metadata"]["generation"] == before["metadata"]["generation"] + 1
        assert after["status"]["updatedReplicas"] == after["status"]["availableReplicas"] == 3
        assert status.restarts == 1


def test_servers_on_a_kubernetes_restart_are_refused_naming_the_step():
    book = runbook(
        [
            {
                "restart": {
                    "servers": ["10.0.0.1:80"],
                    "platform": {"kubernetes": {"deployment": DEPLOYMENT}},
                }
            }
        ],
        service="checkout",
    )
    assert runbook_problems(book) == [
        "spec.steps[0].restart.servers: on platform kubernetes the Deployment is restarted whole"
    ]
