"""A pipeline whose stages run on different kinds of platform: staging on VMs (the command
platform deploying to files the VMs' "current" reads, the nop router), then production on
two clusters (two API server doubles, contexts prod-a and prod-b of one kubeconfig). Real
activities, real child rollouts, time skipping for the soak."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from kubernetes import client
from temporalio.testing import WorkflowEnvironment

from activities.clients import Clients
from activities.kubeconfig import KubeClients
from activities.platforms.deployments import with_image
from activities.routing.spec import NopRouterSpec
from tests.fixtures.harness import worker
from tests.fixtures.kube import Kube
from tests.workflows.kube_cluster import NAMESPACE, team_deployment
from tests.workflows.test_pipeline import pipeline as pipeline_of
from workers.main import activities_with
from workflows.promotion.models import PipelineOutcome, PipelineRequest, PipelineResult
from workflows.promotion.pipeline import PromotionPipeline
from workflows.rollouts.registry import BY_STRATEGY

QUICK = {"canary": {"steps": [{"setWeight": 50}]}}
VMS = {"stable": ["127.0.0.1:7001", "127.0.0.1:7002"], "canary": ["127.0.0.1:7003"]}


def on_vms(directory: Path) -> dict[str, Any]:
    """Each VM is a file named by its port holding the version it runs; all run v1."""
    for address in (*VMS["stable"], *VMS["canary"]):
        (directory / address.rsplit(":", 1)[1]).write_text("v1\n")
    command = {
        "deploy": ["sh", "-c", 'echo "$0" > "$1"', "{version}", f"{directory}/{{port}}"],
        "current": ["cat", f"{directory}/{{port}}"],
    }
    return {"router": {"nop": VMS}, "platform": {"command": command}, "strategy": QUICK}


def on_cluster(context: str) -> dict[str, Any]:
    deployment = {"name": "checkout", "namespace": NAMESPACE, "context": context}
    return {
        "router": {
            "nop": {"stable": [f"checkout.{context}:80"], "canary": [f"canary.{context}:80"]}
        },
        "platform": {"kubernetes": {"deployment": deployment}},
        "strategy": QUICK,
    }


def with_team_deployment(cluster: Kube) -> dict[str, Any]:
    """The team's Deployment rolled out on ``cluster``; its controller then runs on its own."""
    assert cluster.server is not None
    apps = client.AppsV1Api(cluster.api_client)
    apps.create_namespaced_deployment(NAMESPACE, team_deployment())
    cluster.server.controller.settle()
    cluster.server.controller.auto_advance()
    return stored(cluster)


def stored(cluster: Kube, name: str = "checkout") -> dict[str, Any]:
    apps = client.AppsV1Api(cluster.api_client)
    raw = apps.read_namespaced_deployment(name, NAMESPACE, _preload_content=False)
    found: dict[str, Any] = json.loads(raw.data)
    return found


async def test_a_version_goes_from_vms_in_staging_to_two_clusters_in_production(
    temporal_env: WorkflowEnvironment, tmp_path: Path, kube_cluster: Callable[[str], Kube]
):
    prod_a, prod_b = kube_cluster("prod-a"), kube_cluster("prod-b")
    before = {c.context: with_team_deployment(c) for c in (prod_a, prod_b)}
    pipeline = pipeline_of(
        {"environment": "staging", "rollout": on_vms(tmp_path)},
        {"environment": "prod-a", "requiredSoakTime": "1h", "rollout": on_cluster("prod-a")},
        {"environment": "prod-b", "rollout": on_cluster("prod-b")},
        service=f"checkout-{uuid.uuid4().hex[:6]}",
    )
    clients = Clients(kubernetes=KubeClients(kubeconfig=str(prod_a.kubeconfig)))
    task_queue = f"tq-{uuid.uuid4().hex}"
    try:
        async with worker(
            temporal_env,
            [PromotionPipeline, *BY_STRATEGY.values()],
            activities_with(clients),
            task_queue=task_queue,
        ):
            result = await temporal_env.client.execute_workflow(
                PromotionPipeline.run,
                PipelineRequest(pipeline=pipeline, version="v2"),
                id=pipeline.workflow_id,
                task_queue=task_queue,
                result_type=PipelineResult,
            )
    finally:
        clients.kubernetes.close()

    assert result.outcome is PipelineOutcome.SUCCEEDED, result.reason
    staging, a, b = result.stages
    assert [s.state for s in result.stages] == ["succeeded"] * 3
    assert staging.live_since is not None
    assert a.live_since is not None
    assert b.live_since is not None
    assert a.live_since - staging.live_since >= timedelta(hours=1)  # the soak held prod-a
    assert b.live_since >= a.live_since
    # Staging: v2 deployed on the canary VM, which now takes all traffic; the stable VMs
    # keep v1 (the idle list an emergency rollback flips back to).
    served = [(tmp_path / port).read_text().strip() for port in ("7001", "7002", "7003")]
    assert served == ["v1", "v1", "v2"]
    with clients.nop.lock:
        assert clients.nop.routes(NopRouterSpec.model_validate(VMS)).weights.canary == 100
    # Production: each cluster's Deployment has the new pod template, the canary at 0.
    for cluster in (prod_a, prod_b):
        template = before[cluster.context]["spec"]["template"]
        wanted = with_image(template, "app", "registry.example.com/shop/checkout:v2", "v2")
        assert stored(cluster)["spec"]["template"] == wanted, cluster.context
        assert stored(cluster, "checkout-canary")["spec"]["replicas"] == 0
