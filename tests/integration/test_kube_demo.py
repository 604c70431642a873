"""The wiring of ``make demo PLATFORM=kubernetes`` (examples/demo/kube.py), against the API
server double: the demo's specs lint, the team's objects it seeds become available, and what
it reads back is what deployflow's ingress-nginx router wrote."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from temporalio.testing import ActivityEnvironment

from activities.clients import Clients
from activities.kubeconfig import KubeClients
from activities.routing.activities import RouterActivities
from activities.routing.base import Weights
from activities.routing.models import SetWeightInput
from workflows.rollouts.spec import load_rollout

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "examples" / "demo"))  # the demo's modules import each other

import kube as demo  # noqa: E402

SPECS = [REPO / "examples" / "kubernetes" / f"checkout-demo{s}.yaml" for s in ("", "-bad")]


def test_demo_specs_name_the_objects_the_demo_seeds() -> None:
    for path in SPECS:
        rollout = load_rollout(path.read_text(), str(path))
        router = rollout.spec.router.model_dump(by_alias=True, exclude_none=True)
        assert router["ingressNginx"]["namespace"] == demo.NAMESPACE
        assert router["ingressNginx"]["stableIngress"] == demo.STABLE
        assert router["ingressNginx"]["canaryService"] == demo.CANARY
        (stable,) = rollout.spec.targets.stable  # context/namespace/deployment/name
        assert stable.endswith(f"/{demo.NAMESPACE}/deployment/{demo.STABLE}")


def test_demo_reads_back_the_weight_the_router_wrote(kube: Any) -> None:
    kube.controller.auto_advance()
    cluster = demo.Cluster(kube.api_client, str(kube.kubeconfig), double=True)
    demo.seed(cluster, "v1")
    before = demo.read_state(cluster)
    assert before.stable == demo.Workload(
        demo.STABLE, "v1", "checkout:v1", demo.REPLICAS, demo.REPLICAS
    )
    assert (before.canary.version, before.weight) == (None, None)

    rollout = load_rollout(SPECS[0].read_text(), str(SPECS[0]))
    activities = RouterActivities(Clients(kubernetes=KubeClients(str(kube.kubeconfig))))
    request = SetWeightInput(
        router=rollout.spec.router, weights=Weights.canary_at(20), key="demo/step-1"
    )
    ActivityEnvironment().run(activities.set_weight, request)
    assert demo.read_state(cluster).weight == 20
