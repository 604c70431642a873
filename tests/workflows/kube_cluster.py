"""Rollouts on Kubernetes for workflow tests and history recording: the real platform and
nop-router activities against the API server double, its controller advancing on its own,
with time skipping for the pauses. Scenarios return the finished run's handle."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client
from temporalio import activity
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from activities.clients import Clients
from activities.kubeconfig import KubeClients
from activities.kubernetes.testing import DEFAULT_CONTEXT, KubeApiServer
from activities.metrics.activities import MeasureInput, MeasureOutput
from activities.routing.base import Weights
from tests.fixtures.harness import worker
from tests.workflows.harness import wait_for_status
from workers.main import activities_with
from workflows.core.verbs import OperatorInput
from workflows.rollouts.models import RolloutPhase, RolloutResult
from workflows.rollouts.registry import BY_STRATEGY, workflow_type
from workflows.rollouts.spec import Rollout, parse_rollout

NAMESPACE = "shop"
STABLE_IMAGE = "registry.example.com/shop/checkout:v1"
ROUTER = {"nop": {"stable": ["checkout.shop.svc:80"], "canary": ["checkout-canary.shop.svc:80"]}}
ERROR_RATE = {
    "name": "error-rate",
    "metrics": [
        {
            "name": "error-rate",
            "interval": "1m",
            "count": 2,
            "successCondition": "result < 0.01",
            "provider": {"prometheus": {"address": "http://127.0.0.1:9", "query": "errors"}},
        }
    ],
}


def team_deployment(replicas: int = 3, deadline: int = 60) -> dict[str, Any]:
    """The team's Deployment: a sidecar, an annotation and an env var deployflow must keep."""
    app = {"name": "app", "image": STABLE_IMAGE, "env": [{"name": "MODE", "value": "a"}]}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "checkout", "labels": {"app": "checkout"}},
        "spec": {
            "replicas": replicas,
            "progressDeadlineSeconds": deadline,
            "selector": {"matchLabels": {"app": "checkout"}},
            "template": {
                "metadata": {"labels": {"app": "checkout"}, "annotations": {"team": "shop"}},
                "spec": {"containers": [app, {"name": "proxy", "image": "envoy:1.30"}]},
            },
        },
    }


def kube_rollout(strategy: dict[str, Any], version: str = "v2", **deployment: Any) -> Rollout:
    body = {
        "apiVersion": "deployflow/v1",
        "kind": "Rollout",
        "metadata": {"name": "checkout"},
        "spec": {
            "service": "checkout",
            "environment": f"k{uuid.uuid4().hex[:8]}",
            "version": version,
            "router": ROUTER,
            "platform": {
                "kubernetes": {
                    "deployment": {
                        "name": "checkout",
                        "namespace": NAMESPACE,
                        "context": DEFAULT_CONTEXT,
                        **deployment,
                    }
                }
            },
            "strategy": strategy,
            "analysisTemplates": [ERROR_RATE],
        },
    }
    return parse_rollout([body])


@dataclass
class Cluster:
    """The double with the team's Deployment rolled out, and a worker's ``Clients`` for it."""

    server: KubeApiServer
    kubeconfig: Path
    clients: Clients = field(init=False)
    measure_values: Callable[[int], list[float]] = lambda n: [0.0]
    measurements: int = 0

    def __post_init__(self) -> None:
        self.clients = Clients(kubernetes=KubeClients(kubeconfig=str(self.kubeconfig)))
        api = self.clients.kubernetes.api(DEFAULT_CONTEXT)
        client.CoreV1Api(api).create_namespace({"metadata": {"name": NAMESPACE}})
        client.AppsV1Api(api).create_namespaced_deployment(NAMESPACE, team_deployment())
        self.server.controller.settle()
        self.server.controller.auto_advance()

    def deployment(self, name: str = "checkout") -> dict[str, Any]:
        """The Deployment as stored, every field."""
        response = client.AppsV1Api(self.clients.kubernetes.api(DEFAULT_CONTEXT))
        raw = response.read_namespaced_deployment(name, NAMESPACE, _preload_content=False)
        found: dict[str, Any] = json.loads(raw.data)
        return found

    def weights(self, spec: Rollout) -> Weights:
        nop = spec.spec.router.nop
        assert nop is not None
        with self.clients.nop.lock:
            return self.clients.nop.routes(nop).weights

    def activities(self) -> list[Callable[..., Any]]:
        @activity.defn(name="measure")
        async def measure(input: MeasureInput) -> MeasureOutput:
            self.measurements += 1
            return MeasureOutput(values=self.measure_values(self.measurements))

        return [*activities_with(self.clients), measure]


@asynccontextmanager
async def cluster(directory: Path) -> AsyncIterator[Cluster]:
    with KubeApiServer() as server:
        kubeconfig = server.write_kubeconfig(directory / f"kubeconfig-{uuid.uuid4().hex[:6]}")
        found = Cluster(server, kubeconfig)
        try:
            yield found
        finally:
            found.clients.kubernetes.close()


def kube_worker(
    env: WorkflowEnvironment,
    found: Cluster,
    workflows: Sequence[type] = (),
    activities: Sequence[Callable[..., Any]] = (),
) -> AbstractAsyncContextManager[str]:
    """A worker for the rollouts (and ``workflows``) with the cluster's activities."""
    return worker(env, [*BY_STRATEGY.values(), *workflows], [*found.activities(), *activities])


async def start(env: WorkflowEnvironment, tq: str, spec: Rollout) -> WorkflowHandle[Any, Any]:
    return await env.client.start_workflow(
        workflow_type(spec), spec, id=spec.workflow_id, task_queue=tq, result_type=RolloutResult
    )


async def finished(
    env: WorkflowEnvironment,
    found: Cluster,
    spec: Rollout,
    when_paused: Callable[[], Awaitable[None]] | None = None,
) -> tuple[WorkflowHandle[Any, Any], RolloutResult]:
    """Run ``spec`` to its end; ``when_paused`` runs at the first pause, then it is aborted."""
    async with kube_worker(env, found) as tq:
        handle = await start(env, tq, spec)
        if when_paused is not None:
            await wait_for_status(handle, lambda s: s.phase is RolloutPhase.PAUSED, timeout=60)
            await when_paused()
            await handle.execute_update("abort", OperatorInput(by="alice", reason="looks wrong"))
        result: RolloutResult = await handle.result()
        return handle, result
