"""Rollouts whose traffic moves through the Kubernetes routers, for workflow tests and
history recording: every real activity (routers, the Kubernetes platform) against the API
server double with its controller advancing on its own, and ``measure`` answering what the
test says (the stub metrics of tests/workflows/harness.py)."""

from __future__ import annotations

import copy
import uuid
from collections.abc import AsyncIterator, Callable
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
from tests.fixtures.harness import worker
from tests.unit.test_kube_router_bodies import HTTP_ROUTE, STABLE_INGRESS, VS
from tests.workflows.harness import ERROR_RATE_TEMPLATE
from workers.main import activities_with
from workflows.rollouts.models import RolloutResult
from workflows.rollouts.registry import BY_STRATEGY, workflow_type
from workflows.rollouts.spec import Rollout, parse_rollout

NAMESPACE = "default"
WHERE = {"context": DEFAULT_CONTEXT, "namespace": NAMESPACE}
ROUTERS: dict[str, dict[str, Any]] = {
    "ingressNginx": {
        "ingressNginx": WHERE
        | {"stableIngress": "checkout", "stableService": "checkout", "canaryService": "checkout-c"}
    },
    "istio": {
        "istio": WHERE
        | {
            "virtualService": {"name": "checkout", "routes": ["primary"]},
            "stableService": "checkout-stable",
            "canaryService": "checkout-canary",
        }
    },
    "gatewayAPI": {
        "gatewayAPI": WHERE
        | {
            "httpRoute": "checkout",
            "stableService": "checkout-stable",
            "canaryService": "checkout-canary",
        }
    },
    "service": {
        "service": WHERE
        | {
            "activeService": "checkout",
            "previewService": "checkout-preview",
            "stableSelector": {"app": "checkout"},
            "canarySelector": {"app": "checkout-canary"},  # kplat's canary pod labels
        }
    },
}
HEADER_STEP = {
    "setHeaderRoute": {
        "name": "beta",
        "match": [{"headerName": "X-Beta", "headerValue": {"exact": "1"}}],
    }
}


def team_deployment() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "checkout", "labels": {"app": "checkout"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "checkout"}},
            "template": {
                "metadata": {"labels": {"app": "checkout"}},
                "spec": {"containers": [{"name": "app", "image": "registry/checkout:v1"}]},
            },
        },
    }


def service(name: str, app: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"selector": {"app": app}, "ports": [{"port": 80}]},
    }


def traffic_rollout(router: str, strategy: dict[str, Any], version: str = "v2") -> Rollout:
    body = {
        "service": "checkout",
        "environment": f"k{uuid.uuid4().hex[:8]}",
        "version": version,
        "router": ROUTERS[router],
        "platform": {"kubernetes": {"deployment": {"name": "checkout", **WHERE}}},
        "strategy": strategy,
        "analysisTemplates": [ERROR_RATE_TEMPLATE],
    }
    doc = {"apiVersion": "deployflow/v1", "kind": "Rollout", "metadata": {"name": "checkout"}}
    return parse_rollout([doc | {"spec": body}])


@dataclass
class Cluster:
    """The double with the team's Deployment, Services, Ingress, VirtualService and
    HTTPRoute, and a worker's ``Clients`` for it."""

    server: KubeApiServer
    kubeconfig: Path
    clients: Clients = field(init=False)
    measure_values: Callable[[int], list[float]] = lambda n: [0.0]

    def __post_init__(self) -> None:
        self.clients = Clients(kubernetes=KubeClients(kubeconfig=str(self.kubeconfig)))
        api = self.clients.kubernetes.api(DEFAULT_CONTEXT)
        client.AppsV1Api(api).create_namespaced_deployment(NAMESPACE, team_deployment())
        core = client.CoreV1Api(api)
        for name, app in (("checkout", "checkout"), ("checkout-preview", "checkout-canary")):
            core.create_namespaced_service(NAMESPACE, service(name, app))
        networking = client.NetworkingV1Api(api)
        networking.create_namespaced_ingress(NAMESPACE, fresh(STABLE_INGRESS))
        custom = client.CustomObjectsApi(api)
        custom.create_namespaced_custom_object(
            "networking.istio.io", "v1", NAMESPACE, "virtualservices", fresh(VS)
        )
        custom.create_namespaced_custom_object(
            "gateway.networking.k8s.io", "v1", NAMESPACE, "httproutes", fresh(HTTP_ROUTE)
        )
        self.server.controller.settle()
        self.server.controller.auto_advance()

    @property
    def api(self) -> client.ApiClient:
        return self.clients.kubernetes.api(DEFAULT_CONTEXT)

    def activities(self) -> list[Callable[..., Any]]:
        measurements = 0

        @activity.defn(name="measure")
        async def measure(input: MeasureInput) -> MeasureOutput:
            nonlocal measurements
            measurements += 1
            return MeasureOutput(values=self.measure_values(measurements))

        return [*activities_with(self.clients), measure]


def fresh(obj: dict[str, Any]) -> dict[str, Any]:
    body = copy.deepcopy(obj)
    body["metadata"].pop("resourceVersion", None)
    body["metadata"]["namespace"] = NAMESPACE
    return body


@asynccontextmanager
async def cluster(directory: Path) -> AsyncIterator[Cluster]:
    with KubeApiServer() as server:
        kubeconfig = server.write_kubeconfig(directory / f"kubeconfig-{uuid.uuid4().hex[:6]}")
        found = Cluster(server, kubeconfig)
        try:
            yield found
        finally:
            found.clients.kubernetes.close()


def kube_worker(env: WorkflowEnvironment, found: Cluster) -> AbstractAsyncContextManager[str]:
    return worker(env, list(BY_STRATEGY.values()), found.activities())


async def run(env: WorkflowEnvironment, found: Cluster, spec: Rollout) -> WorkflowHandle[Any, Any]:
    """Run ``spec`` to its end on a fresh worker; the finished run's handle."""
    async with kube_worker(env, found) as task_queue:
        handle = await env.client.start_workflow(
            workflow_type(spec),
            spec,
            id=spec.workflow_id,
            task_queue=task_queue,
            result_type=RolloutResult,
        )
        await handle.result()
    return handle
