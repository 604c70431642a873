"""Canaries and blue-green on Kubernetes with traffic moved by the Kubernetes routers: every
real activity against the API server double, time skipping for the soaks, stub metrics.

A canary shifts ingress-nginx, Istio and Gateway API weights, holds a header route to the
canary, and either is promoted (the Flagger way: the team's Deployment takes the new
template, traffic goes back to it) or rolled back on failed analysis; either way the header
route is gone at the end."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client

from activities.routing.base import HeaderRouting, Weights
from activities.routing.factory import router_for
from tests.workflows.kube_traffic import (
    HEADER_STEP,
    NAMESPACE,
    Cluster,
    cluster,
    run,
    traffic_rollout,
)
from workflows.rollouts.models import RolloutPhase, RolloutResult

CANARY = {
    "canary": {
        "steps": [
            {"setWeight": 20},
            HEADER_STEP,
            {"pause": {"duration": "30m"}},
            {"analysis": {"templates": [{"templateName": "error-rate"}]}},
            {"setWeight": 60},
        ]
    }
}
SPLITTING = ["ingressNginx", "istio", "gatewayAPI"]


def image(found: Cluster, name: str = "checkout") -> str:
    raw = client.AppsV1Api(found.api).read_namespaced_deployment(
        name, NAMESPACE, _preload_content=False
    )
    deployment: dict[str, Any] = json.loads(raw.data)
    containers = deployment["spec"]["template"]["spec"]["containers"]
    return str(containers[0]["image"])


def weight_events(result: RolloutResult) -> list[str]:
    return [e.message for e in result.events if e.kind == "weights"]


def header_route_events(result: RolloutResult) -> list[str]:
    return [e.message for e in result.events if e.kind == "header-route"]


@pytest.mark.parametrize("router", SPLITTING)
async def test_a_canary_shifts_the_routers_weights_and_is_promoted(temporal_env, tmp_path, router):
    async with cluster(tmp_path) as found:
        spec = traffic_rollout(router, CANARY)

        handle = await run(temporal_env, found, spec)
        result: RolloutResult = await handle.result()

        assert result.outcome is RolloutPhase.PROMOTED, result.reason
        assert weight_events(result) == [
            "stable 80 % / canary 20 % (step-0)",
            "stable 40 % / canary 60 % (step-4)",
            "stable 0 % / canary 100 % (promoted)",
            "stable 100 % / canary 0 % (back-to-stable)",
        ]
        assert header_route_events(result) == [
            "header route beta; held: beta",
            "header routes removed (promoted)",
        ]
        live = router_for(spec.spec.router, found.clients)
        assert live.get_weights() == Weights(stable=100, canary=0)
        assert isinstance(live, HeaderRouting)
        assert live.get_header_routes() == []
        assert image(found) == "registry/checkout:v2"


@pytest.mark.parametrize("router", SPLITTING)
async def test_a_canary_failing_analysis_rolls_back_traffic_and_the_header_route(
    temporal_env, tmp_path, router
):
    async with cluster(tmp_path) as found:
        found.measure_values = lambda n: [0.5]  # error rate 50 %: the analysis fails
        spec = traffic_rollout(router, CANARY)

        handle = await run(temporal_env, found, spec)
        result: RolloutResult = await handle.result()

        assert result.outcome is RolloutPhase.ROLLED_BACK
        assert "analysis step-3 Failed" in result.reason
        assert weight_events(result) == [
            "stable 80 % / canary 20 % (step-0)",
            "stable 100 % / canary 0 % (rollback)",
        ]
        assert header_route_events(result)[-1] == "header routes removed (rollback)"
        live = router_for(spec.spec.router, found.clients)
        assert live.get_weights() == Weights(stable=100, canary=0)
        assert isinstance(live, HeaderRouting)
        assert live.get_header_routes() == []
        assert image(found) == "registry/checkout:v1"


def blue_green(**strategy: Any) -> dict[str, Any]:
    analysis = {"templates": [{"templateName": "error-rate"}]}
    return {
        "blueGreen": {
            "autoPromotionSeconds": 600,
            "postPromotionAnalysis": analysis,
            "scaleDownDelaySeconds": 30,
            **strategy,
        }
    }


def selectors(found: Cluster) -> dict[str, dict[str, str]]:
    core = client.CoreV1Api(found.api)
    return {
        name: core.read_namespaced_service(name, NAMESPACE).spec.selector
        for name in ("checkout", "checkout-preview")
    }


def service_patches(found: Cluster) -> list[Any]:
    return [
        r.body["spec"]["selector"]
        for r in found.server.double.recorded()
        if r.method == "PATCH" and r.path.endswith("/services/checkout")
    ]


def replicas(found: Cluster, name: str) -> int:
    scale = client.AppsV1Api(found.api).read_namespaced_deployment_scale(name, NAMESPACE)
    return int(scale.spec.replicas)


async def test_blue_green_switches_the_active_service_selector_then_promotes_the_team_deployment(
    temporal_env, tmp_path
):
    async with cluster(tmp_path) as found:
        spec = traffic_rollout("service", blue_green())

        handle = await run(temporal_env, found, spec)
        result: RolloutResult = await handle.result()

        assert result.outcome is RolloutPhase.PROMOTED, result.reason
        assert weight_events(result) == [
            "stable 100 % / canary 0 % (preview)",
            "stable 0 % / canary 100 % (switch)",
            "stable 100 % / canary 0 % (back-to-stable)",
        ]
        assert service_patches(found) == [{"app": "checkout-canary"}, {"app": "checkout"}]
        assert selectors(found) == {
            "checkout": {"app": "checkout"},
            "checkout-preview": {"app": "checkout-canary"},
        }
        assert image(found) == "registry/checkout:v2"
        assert replicas(found, "checkout-canary") == 0


async def test_blue_green_failing_post_promotion_analysis_switches_straight_back(
    temporal_env, tmp_path
):
    async with cluster(tmp_path) as found:
        found.measure_values = lambda n: [0.5]
        spec = traffic_rollout("service", blue_green())

        handle = await run(temporal_env, found, spec)
        result: RolloutResult = await handle.result()

        assert result.outcome is RolloutPhase.ROLLED_BACK
        assert "analysis post-promotion Failed" in result.reason
        assert weight_events(result)[-2:] == [
            "stable 0 % / canary 100 % (switch)",
            "stable 100 % / canary 0 % (switch back)",
        ]
        assert selectors(found)["checkout"] == {"app": "checkout"}
        assert image(found) == "registry/checkout:v1"
        assert replicas(found, "checkout-canary") == 0
