"""Our manifests in Argo Rollouts' vocabulary (tests/data/argo_style/rollouts, covering the
fields of Argo's documented examples) run end to end:
the real platform and router activities against the Kubernetes API server double (its
controller advancing on its own), time skipping for the pauses, analysis measured by a stub
``measure`` activity. A test changes its copy's image to the new version, as
``kubectl argo rollouts set image`` would; the cluster holds what ``kubectl apply`` of the
manifest's other files and of the Rollout's stable Deployment would have made."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from activities.clients import Clients
from activities.kubeconfig import KubeClients
from activities.kubernetes.testing import KubeApiServer
from activities.routing.base import Weights
from tests.unit.test_argo_manifests import documents
from tests.workflows.harness import wait_for_status
from tests.workflows.kube_cluster import Cluster, kube_worker
from workflows.core.verbs import OperatorInput
from workflows.rollouts.argo_rollout import stable_deployment
from workflows.rollouts.models import RolloutPhase, RolloutResult
from workflows.rollouts.registry import workflow_type
from workflows.rollouts.spec import Rollout, parse_rollout

Obj = dict[str, Any]
NAMESPACE = "default"
NEW_IMAGE = "registry.example.test/next:v9.0.0"  # only the tag is the version
ISTIO = ("networking.istio.io", "v1")
GATEWAY = ("gateway.networking.k8s.io", "v1")
CUSTOM = {"VirtualService": (ISTIO, "virtualservices"), "HTTPRoute": (GATEWAY, "httproutes")}
# analysis-step.yaml's templates as a team without Kubernetes Jobs would write them.
STEP_TEMPLATES = [
    {
        "kind": "AnalysisTemplate",
        "apiVersion": "argoproj.io/v1alpha1",
        "metadata": {"name": "error-budget"},
        "spec": {
            "metrics": [
                {
                    "name": "error-budget",
                    "count": 2,
                    "interval": "5s",
                    "failureLimit": 1,
                    "successCondition": "result < 0.05",
                    "provider": {"prometheus": {"address": "http://127.0.0.1:9", "query": "e"}},
                }
            ]
        },
    },
    {
        "kind": "ClusterAnalysisTemplate",
        "apiVersion": "argoproj.io/v1alpha1",
        "metadata": {"name": "smoke-ok"},
        "spec": {
            "metrics": [
                {
                    "name": "smoke",
                    "count": 1,
                    "interval": "5s",
                    "successCondition": "result >= 0",
                    "provider": {"prometheus": {"address": "http://127.0.0.1:9", "query": "up"}},
                }
            ]
        },
    },
]


def manifest(name: str) -> Obj:
    """The file's Rollout with the new version's image (its first container)."""
    rollout = copy.deepcopy(documents(name)[0])
    rollout["spec"]["template"]["spec"]["containers"][0]["image"] = NEW_IMAGE
    # One rollout per environment at a time, and tests share a Temporal server.
    rollout["metadata"]["annotations"] = {"deployflow.io/environment": f"t{uuid.uuid4().hex[:8]}"}
    return rollout


class ArgoCluster(Cluster):
    """The double holding the manifest's stable Deployment and objects (namespace
    ``default``); the worker's clients and stub ``measure`` are kube_cluster's."""

    def __post_init__(self) -> None:
        self.clients = Clients(kubernetes=KubeClients(kubeconfig=str(self.kubeconfig)))

    @property
    def api(self) -> client.ApiClient:
        return self.clients.kubernetes.api(None)

    def apply(self, name: str) -> None:
        """What ``kubectl apply -f`` of the file's Rollout would leave as the stable
        Deployment: the manifest as Argo's controller first runs it (the old image)."""
        deployment = stable_deployment(documents(name)[0])
        client.AppsV1Api(self.api).create_namespaced_deployment(NAMESPACE, deployment)
        self.server.controller.settle()
        self.server.controller.auto_advance()

    def create(self, *names: str) -> None:
        """The files' Services, Ingresses, VirtualServices and HTTPRoutes (Istio
        serves a ``v1alpha3`` object at ``v1`` too, Gateway API a ``v1beta1`` one at ``v1``;
        the double has one version of each, so they go in at v1)."""
        for obj in (obj for name in names for obj in documents(name)):
            if obj["kind"] == "Service":
                client.CoreV1Api(self.api).create_namespaced_service(NAMESPACE, obj)
            elif obj["kind"] == "Ingress":
                client.NetworkingV1Api(self.api).create_namespaced_ingress(NAMESPACE, obj)
            elif obj["kind"] in CUSTOM:
                group, plural = CUSTOM[obj["kind"]]
                body = obj | {"apiVersion": "/".join(group)}
                custom = client.CustomObjectsApi(self.api)
                custom.create_namespaced_custom_object(*group, NAMESPACE, plural, body)

    def deployment(self, name: str) -> Obj:
        apps = client.AppsV1Api(self.api)
        raw = apps.read_namespaced_deployment(name, NAMESPACE, _preload_content=False)
        found: Obj = json.loads(raw.data)
        return found

    def ingress(self, name: str) -> Obj:
        raw = client.NetworkingV1Api(self.api).read_namespaced_ingress(
            name, NAMESPACE, _preload_content=False
        )
        found: Obj = json.loads(raw.data)
        return found

    def selector(self, service: str) -> dict[str, str]:
        found = client.CoreV1Api(self.api).read_namespaced_service(service, NAMESPACE)
        return dict(found.spec.selector)

    def selectors_sent(self, service: str) -> list[dict[str, str | None]]:
        """The selector changes PATCHed to ``service``, in order."""
        return [
            r.body["spec"]["selector"]
            for r in self.server.double.recorded()
            if r.method == "PATCH" and r.path.endswith(f"/services/{service}")
        ]

    def route_weights(self, virtual_service: str) -> list[list[int]]:
        """Each http route's destination weights."""
        custom = client.CustomObjectsApi(self.api)
        vs = custom.get_namespaced_custom_object(
            *ISTIO, NAMESPACE, "virtualservices", virtual_service
        )
        return [[d["weight"] for d in r["route"]] for r in vs["spec"]["http"]]

    def backend_weights(self, http_route: str) -> list[list[int]]:
        """Each rule's backendRef weights."""
        custom = client.CustomObjectsApi(self.api)
        route = custom.get_namespaced_custom_object(*GATEWAY, NAMESPACE, "httproutes", http_route)
        return [[b["weight"] for b in r["backendRefs"]] for r in route["spec"]["rules"]]

    def pin_backends(self, http_route: str, weights: list[int]) -> None:
        """What a team does first: explicit weights on the route's one rule."""
        custom = client.CustomObjectsApi(self.api)
        route = custom.get_namespaced_custom_object(*GATEWAY, NAMESPACE, "httproutes", http_route)
        for backend, weight in zip(route["spec"]["rules"][0]["backendRefs"], weights, strict=True):
            backend["weight"] = weight
        custom.replace_namespaced_custom_object(
            *GATEWAY, NAMESPACE, "httproutes", http_route, route
        )


@asynccontextmanager
async def cluster(
    env: WorkflowEnvironment, tmp_path: Path
) -> AsyncIterator[tuple[ArgoCluster, str]]:
    """The double, and a worker's task queue whose activities talk to it."""
    with KubeApiServer() as server:
        found = ArgoCluster(server, server.write_kubeconfig(tmp_path / "kubeconfig"))
        try:
            async with kube_worker(env, found) as task_queue:
                yield found, task_queue
        finally:
            found.clients.kubernetes.close()


async def start(env: WorkflowEnvironment, tq: str, docs: list[Obj]) -> WorkflowHandle[Any, Any]:
    spec: Rollout = parse_rollout(yaml.safe_load_all(yaml.safe_dump_all(docs)))  # as a file
    return await env.client.start_workflow(
        workflow_type(spec), spec, id=spec.workflow_id, task_queue=tq, result_type=RolloutResult
    )


async def paused(handle: WorkflowHandle[Any, Any], step: int | None = None) -> None:
    """Until the rollout waits for ``promote`` (at ``step``, if given)."""
    await wait_for_status(
        handle,
        lambda s: s.phase is RolloutPhase.PAUSED and step in (None, s.current_step),
        timeout=60,
    )


async def promoted(handle: WorkflowHandle[Any, Any]) -> RolloutResult:
    await handle.execute_update("promote", OperatorInput(by="alice", reason="looks good"))
    result: RolloutResult = await handle.result()
    return result


def image(deployment: Obj) -> str:
    return str(deployment["spec"]["template"]["spec"]["containers"][0]["image"])


def runs_the_new_image(found: ArgoCluster, name: str, replicas: int) -> None:
    """After a promotion: the team's Deployment runs the new image on all ``replicas``,
    deployflow's canary beside it is scaled to 0."""
    stable = found.deployment(name)
    assert image(stable) == NEW_IMAGE
    assert (stable["spec"]["replicas"], stable["status"]["availableReplicas"]) == (replicas,) * 2
    assert found.deployment(f"{name}-canary")["spec"]["replicas"] == 0


def runs_as_before(found: ArgoCluster, name: str, before: Obj) -> Obj:
    """After a rollback: the team's Deployment has the pod template it had, the canary is
    scaled to 0; the Deployment."""
    stable = found.deployment(name)
    assert stable["spec"]["template"] == before["spec"]["template"]
    assert found.deployment(f"{name}-canary")["spec"]["replicas"] == 0
    return stable


async def test_a_canary_is_promoted_after_its_pauses(
    temporal_env: WorkflowEnvironment, tmp_path: Path
):
    async with cluster(temporal_env, tmp_path) as (found, tq):
        found.apply("canary-steps.yaml")
        handle = await start(temporal_env, tq, [manifest("canary-steps.yaml")])
        await paused(handle)  # step 1: `pause: {}`, after setWeight 25
        canary = found.deployment("ledger-canary")
        assert image(canary) == NEW_IMAGE
        # No traffic router: 25 % of spec.replicas (4) is one canary pod, three stable ones.
        assert (canary["spec"]["replicas"], canary["status"]["availableReplicas"]) == (1, 1)
        stable = found.deployment("ledger")
        assert stable["spec"]["replicas"] == 3
        assert image(stable) == "registry.example.test/ledger:v1.4.0"
        status = await wait_for_status(handle, lambda s: s.weights is not None)
        assert status.weights == Weights(stable=75, canary=25)

        result = await promoted(handle)  # the 45 s and 15 s pauses are skipped in time

        assert result.outcome is RolloutPhase.PROMOTED, result.reason
        runs_the_new_image(found, "ledger", replicas=4)
        weights = [e.message for e in result.events if e.kind == "weights"]
        assert [w.split(" (")[0] for w in weights] == [
            "stable 75 % / canary 25 %",
            "stable 50 % / canary 50 %",
            "stable 25 % / canary 75 %",
            "stable 0 % / canary 100 %",
            "stable 100 % / canary 0 %",
        ]


async def test_an_aborted_replica_count_canary_gets_its_stable_replicas_back(
    temporal_env: WorkflowEnvironment, tmp_path: Path
):
    async with cluster(temporal_env, tmp_path) as (found, tq):
        found.apply("canary-steps.yaml")
        handle = await start(temporal_env, tq, [manifest("canary-steps.yaml")])
        await paused(handle)
        await handle.execute_update("promote", OperatorInput(by="alice", reason="next"))
        await wait_for_status(handle, lambda s: s.weights == Weights.canary_at(50), timeout=60)
        await handle.execute_update("abort", OperatorInput(by="alice", reason="latency"))
        result: RolloutResult = await handle.result()

        assert result.outcome is RolloutPhase.ABORTED, result.reason
        stable = found.deployment("ledger")
        assert (stable["spec"]["replicas"], stable["status"]["availableReplicas"]) == (4, 4)
        assert image(stable) == "registry.example.test/ledger:v1.4.0"
        assert found.deployment("ledger-canary")["spec"]["replicas"] == 0


async def test_an_analysis_step_is_rolled_back_when_its_analysis_fails(
    temporal_env: WorkflowEnvironment, tmp_path: Path
):
    async with cluster(temporal_env, tmp_path) as (found, tq):
        found.measure_values = lambda n: [0.5]  # error-budget fails; smoke-ok passes
        found.apply("analysis-step.yaml")
        before = found.deployment("payments")
        handle = await start(temporal_env, tq, [manifest("analysis-step.yaml"), *STEP_TEMPLATES])
        result: RolloutResult = await handle.result()

        assert result.outcome is RolloutPhase.ROLLED_BACK
        assert "analysis step-1 Failed" in result.reason
        stable = runs_as_before(found, "payments", before)
        assert stable["spec"]["replicas"] == 2  # 1 while the canary had 30 %


async def test_an_nginx_canary_weights_a_canary_ingress(
    temporal_env: WorkflowEnvironment, tmp_path: Path
):
    async with cluster(temporal_env, tmp_path) as (found, tq):
        found.apply("nginx-rollout.yaml")
        found.create("nginx-services.yaml", "nginx-ingress.yaml")
        handle = await start(temporal_env, tq, [manifest("nginx-rollout.yaml")])
        await paused(handle)  # after setWeight 10
        canary = found.ingress("catalog-web-canary")
        annotations = canary["metadata"]["annotations"]
        assert annotations["nginx.ingress.kubernetes.io/canary"] == "true"
        assert annotations["nginx.ingress.kubernetes.io/canary-weight"] == "10"
        backend = canary["spec"]["rules"][0]["http"]["paths"][0]["backend"]
        assert backend["service"]["name"] == "catalog-canary"

        result = await promoted(handle)

        assert result.outcome is RolloutPhase.PROMOTED, result.reason
        weight = found.ingress("catalog-web-canary")["metadata"]["annotations"]
        assert weight["nginx.ingress.kubernetes.io/canary-weight"] == "0"  # back on stable
        assert image(found.deployment("catalog")) == NEW_IMAGE


async def test_an_istio_canary_weights_both_virtual_services(
    temporal_env: WorkflowEnvironment, tmp_path: Path
):
    async with cluster(temporal_env, tmp_path) as (found, tq):
        found.apply("istio-rollout.yaml")
        found.create("istio-services.yaml", "istio-virtualservices.yaml")
        handle = await start(temporal_env, tq, [manifest("istio-rollout.yaml")])
        await paused(handle)  # after setWeight 15
        assert found.route_weights("reviews-public") == [[85, 15]]
        assert found.route_weights("reviews-internal") == [[85, 15]]

        result = await promoted(handle)

        assert result.outcome is RolloutPhase.PROMOTED, result.reason
        assert found.route_weights("reviews-public") == [[100, 0]]
        assert found.route_weights("reviews-internal") == [[100, 0]]
        assert image(found.deployment("reviews")) == NEW_IMAGE


BLUE = {"app": "storefront"}
GREEN = {"app": "storefront-canary", "deployflow.io/role": "canary"}


async def test_a_bluegreen_rollout_switches_the_active_service_after_promote(
    temporal_env: WorkflowEnvironment, tmp_path: Path
):
    async with cluster(temporal_env, tmp_path) as (found, tq):
        found.apply("bluegreen.yaml")
        found.create("bluegreen.yaml")
        handle = await start(temporal_env, tq, [manifest("bluegreen.yaml")])
        await paused(handle)  # autoPromotionEnabled: false
        assert found.selector("storefront-next") == GREEN
        assert found.selector("storefront-live") == BLUE
        assert image(found.deployment("storefront-canary")) == NEW_IMAGE

        result = await promoted(handle)

        assert result.outcome is RolloutPhase.PROMOTED, result.reason
        # Switched to the new pods, then back to the team's Deployment once it runs them.
        assert found.selectors_sent("storefront-live") == [
            GREEN,
            {"app": "storefront", "deployflow.io/role": None},
        ]
        assert found.selector("storefront-live") == BLUE
        runs_the_new_image(found, "storefront", replicas=3)


async def test_a_bluegreen_failing_post_promotion_analysis_switches_back(
    temporal_env: WorkflowEnvironment, tmp_path: Path
):
    async with cluster(temporal_env, tmp_path) as (found, tq):
        found.measure_values = lambda n: [0.5]
        found.apply("bluegreen.yaml")
        found.create("bluegreen.yaml")
        before = found.deployment("storefront")
        rollout = manifest("bluegreen.yaml")
        rollout["spec"]["strategy"]["blueGreen"] |= {
            "autoPromotionEnabled": True,
            "postPromotionAnalysis": {"templates": [{"templateName": "error-budget"}]},
        }
        result: RolloutResult = await (
            await start(temporal_env, tq, [rollout, STEP_TEMPLATES[0]])
        ).result()

        assert result.outcome is RolloutPhase.ROLLED_BACK
        assert "post-promotion" in result.reason
        assert found.selectors_sent("storefront-live")[0] == GREEN  # it was live
        assert found.selector("storefront-live") == BLUE
        stable = runs_as_before(found, "storefront", before)
        assert stable["metadata"]["generation"] == before["metadata"]["generation"]


async def test_a_gateway_api_canary_weights_the_httproute_backends(
    temporal_env: WorkflowEnvironment, tmp_path: Path
):
    async with cluster(temporal_env, tmp_path) as (found, tq):
        found.apply("gatewayapi-rollout.yaml")
        found.create("gatewayapi-services.yaml", "gatewayapi-httproute.yaml")
        # Its backendRefs carry no weights: Gateway API's default of 1 each splits traffic
        # 50/50, which deployflow takes for a rollout half-way and refuses to start on.
        refused = await start(temporal_env, tq, [manifest("gatewayapi-rollout.yaml")])
        aborted: RolloutResult = await refused.result()
        assert aborted.outcome is RolloutPhase.ABORTED
        assert "traffic is split 50/50" in aborted.reason
        found.pin_backends("orders-route", [100, 0])

        handle = await start(temporal_env, tq, [manifest("gatewayapi-rollout.yaml")])
        seen = []
        for step in (1, 3, 5):  # each `pause: {}` after a setWeight
            await paused(handle, step)
            seen += found.backend_weights("orders-route")
            if step < 5:
                await handle.execute_update("promote", OperatorInput(by="alice", reason="ok"))
        result = await promoted(handle)

        assert result.outcome is RolloutPhase.PROMOTED, result.reason
        assert seen == [[85, 15], [55, 45], [0, 100]]
        assert found.backend_weights("orders-route") == [[100, 0]]
        assert image(found.deployment("orders")) == NEW_IMAGE


async def test_a_rollout_whose_stable_deployment_is_missing_stops_before_any_change(
    temporal_env: WorkflowEnvironment, tmp_path: Path
):
    async with cluster(temporal_env, tmp_path) as (found, tq):
        handle = await start(temporal_env, tq, [manifest("canary-steps.yaml")])
        result: RolloutResult = await handle.result()

        assert result.outcome is RolloutPhase.ABORTED
        assert "ledger" in result.reason
        writes = [r for r in found.server.double.recorded() if r.method != "GET"]
        assert writes == []


def with_sidecar(rollout: Obj, image: str) -> Obj:
    """``rollout`` with a second container (a proxy on ``image``) in its pod template."""
    changed = copy.deepcopy(rollout)
    changed["spec"]["template"]["spec"]["containers"].append({"name": "proxy", "image": image})
    return changed


def images(deployment: Obj) -> list[str]:
    return [c["image"] for c in deployment["spec"]["template"]["spec"]["containers"]]


async def test_every_container_of_the_manifest_rolls_out_and_an_abort_puts_both_back(
    temporal_env: WorkflowEnvironment, tmp_path: Path
):
    old = "registry.example.test/ledger:v1.4.0"
    async with cluster(temporal_env, tmp_path) as (found, tq):
        first = with_sidecar(documents("canary-steps.yaml")[0], "envoy:1.30")
        apps = client.AppsV1Api(found.api)
        apps.create_namespaced_deployment(NAMESPACE, stable_deployment(first))
        found.server.controller.settle()
        found.server.controller.auto_advance()
        recorded = found.deployment("ledger")["spec"]["template"]

        # v9 upgrades the proxy too: the canary runs both new images.
        handle = await start(
            temporal_env, tq, [with_sidecar(manifest("canary-steps.yaml"), "envoy:1.31")]
        )
        await paused(handle)
        assert images(found.deployment("ledger-canary")) == [NEW_IMAGE, "envoy:1.31"]
        assert images(found.deployment("ledger")) == [old, "envoy:1.30"]
        await handle.execute_update("abort", OperatorInput(by="alice", reason="latency"))
        result: RolloutResult = await handle.result()
        assert result.outcome is RolloutPhase.ABORTED, result.reason
        assert found.deployment("ledger")["spec"]["template"] == recorded

        # v9 again, the proxy unchanged this time: promoted, the sidecar still there.
        again = with_sidecar(manifest("canary-steps.yaml"), "envoy:1.30")
        handle = await start(temporal_env, tq, [again])
        await paused(handle)
        result = await promoted(handle)
        assert result.outcome is RolloutPhase.PROMOTED, result.reason
        assert images(found.deployment("ledger")) == [NEW_IMAGE, "envoy:1.30"]
