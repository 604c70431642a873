"""How long a Kubernetes rollout's activities take against the API server double.

The double runs as a process of its own (``python -m activities.kubernetes.testing``, its
controller advancing on every request: a Deployment's rollout takes a few controller
rounds, each a request); each activity runs as the worker runs it (the real activity
method under ``ActivityEnvironment``, the official client over HTTP on 127.0.0.1), in a
loop, alternating between two states so every call is a real change:

    record_stable                 read the team's Deployment
    apply_canary                  the canary Deployment at a new version, 4 pods, rolled out
    set_weight <router>           20 % / 50 % on ingressNginx, istio, gatewayAPI, replicas
                                  (the last scales the two Deployments and waits for pods);
                                  service: 0 / 100 (a selector switch)
    set_stable (promotion)        the team's Deployment on the new template, rolled out
    scale_workload                the canary to 0 and back

Not measured: the Temporal round trip around each activity (bench/step_overhead.py: ~50 ms
on these machines), pods really starting (the double's controller simulates that).

    .venv/bin/python bench/kube_activities.py [--rounds 20] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chaos_kube import IMAGE, REPLICAS, seed_namespace
from chaos_parts import BIN, Process
from common import exit_now, machine
from kubernetes import client, config
from temporalio.testing import ActivityEnvironment

from activities.clients import Clients
from activities.kubeconfig import KubeClients
from activities.platforms.activities import PlatformActivities
from activities.platforms.deployments import with_image
from activities.platforms.models import (
    ApplyCanaryInput,
    RecordStableInput,
    ScaleInput,
    SetStableInput,
)
from activities.platforms.spec import KubernetesPlatformSpec
from activities.routing.activities import RouterActivities
from activities.routing.base import Weights
from activities.routing.models import SetWeightInput
from activities.routing.spec import RouterSpec

NAMESPACE = "bench"
WHERE = {"namespace": NAMESPACE}
ROUTERS: dict[str, dict[str, Any]] = {
    "ingressNginx": {
        "ingressNginx": WHERE
        | {"stableIngress": "web", "stableService": "web", "canaryService": "web-canary"}
    },
    "istio": {
        "istio": WHERE
        | {
            "virtualService": {"name": "web", "routes": ["primary"]},
            "stableService": "web",
            "canaryService": "web-canary",
        }
    },
    "gatewayAPI": {
        "gatewayAPI": WHERE
        | {"httpRoute": "web", "stableService": "web", "canaryService": "web-canary"}
    },
    "service": {
        "service": WHERE
        | {
            "activeService": "web",
            "stableSelector": {"app": "web"},
            "canarySelector": {"app": "web-canary"},
        }
    },
    "replicas": {"replicas": WHERE | {"deployment": "web", "replicas": REPLICAS}},
}


def seed_routes(api: client.ApiClient) -> None:
    """What the Service and Gateway API routers read, beside chaos_kube's objects."""
    client.CoreV1Api(api).create_namespaced_service(
        NAMESPACE,
        {
            "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]},
        },
    )
    backends = [
        {"name": "web", "port": 80, "weight": 100},
        {"name": "web-canary", "port": 80, "weight": 0},
    ]
    client.CustomObjectsApi(api).create_namespaced_custom_object(
        "gateway.networking.k8s.io", "v1", NAMESPACE, "httproutes",
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "HTTPRoute",
            "metadata": {"name": "web"},
            "spec": {"parentRefs": [{"name": "gw"}], "rules": [{"backendRefs": backends}]},
        },
    )  # fmt: skip


def timed(rounds: int, call: Callable[[int], object]) -> list[float]:
    """Milliseconds of each of ``rounds`` calls (``call(round)``)."""
    seen = []
    for number in range(rounds):
        began = time.perf_counter()
        call(number)
        seen.append((time.perf_counter() - began) * 1000)
    return seen


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "median_ms": round(statistics.median(ordered), 1),
        "p95_ms": round(ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))], 1),
        "max_ms": round(ordered[-1], 1),
    }


def routers_only(kubeconfig: Path, rounds: int) -> dict[str, dict[str, float]]:
    """The routers that wait for nothing, against a double whose controller stands still:
    what the requests themselves cost."""
    api = config.new_client_from_config(str(kubeconfig))
    seed_namespace(api, NAMESPACE)
    seed_routes(api)
    clients = Clients(kubernetes=KubeClients(kubeconfig=str(kubeconfig)))
    found = {}
    for kind in ("ingressNginx", "istio", "gatewayAPI", "service"):
        found[f"set_weight {kind}"] = summary(shifts(clients, kind, rounds))
    clients.kubernetes.close()
    return found


def shifts(clients: Clients, kind: str, rounds: int) -> list[float]:
    """``rounds`` weight changes through router ``kind``, then back to stable."""
    routing, env = RouterActivities(clients), ActivityEnvironment()
    spec = RouterSpec.model_validate(ROUTERS[kind])
    low, high = (0, 100) if kind == "service" else (20, 50)

    def shift(number: int) -> None:
        weights = Weights.canary_at(high if number % 2 == 0 else low)
        env.run(routing.set_weight, SetWeightInput(router=spec, weights=weights, key="k"))

    seen = timed(rounds, shift)
    # Back to stable before the next router (a Service switched to the canary, say).
    env.run(routing.set_weight, SetWeightInput(router=spec, weights=Weights.canary_at(0), key="k"))
    return seen


def measure(kubeconfig: Path, rounds: int) -> dict[str, dict[str, float]]:
    api = config.new_client_from_config(str(kubeconfig))
    seed_namespace(api, NAMESPACE)
    seed_routes(api)
    clients = Clients(kubernetes=KubeClients(kubeconfig=str(kubeconfig)))
    platforms = PlatformActivities(clients)
    env = ActivityEnvironment()
    platform = KubernetesPlatformSpec.model_validate(
        {"deployment": {"name": "web", "namespace": NAMESPACE, "image": IMAGE}}
    )
    found: dict[str, list[float]] = {}
    found["record_stable"] = timed(
        rounds,
        lambda n: env.run(platforms.record_stable, RecordStableInput(platform=platform, key="k")),
    )
    record = env.run(platforms.record_stable, RecordStableInput(platform=platform, key="k"))

    def canary(number: int) -> None:
        request = ApplyCanaryInput(
            platform=platform, stable=record, version=f"v{number + 1}", replicas=REPLICAS,
            rollout="bench", key="k",
        )  # fmt: skip
        env.run(platforms.apply_canary, request)

    found["apply_canary (deploy + wait)"] = timed(rounds, canary)
    for kind in ROUTERS:
        found[f"set_weight {kind}"] = shifts(clients, kind, rounds)

    def promote(number: int) -> None:
        version = f"v{100 + number}"
        template = with_image(
            record.template, record.container, IMAGE.format(version=version), version
        )
        request = SetStableInput(
            platform=platform, template=template, strategy=None, progress_deadline_seconds=None,
            rollout="bench", key="k",
        )  # fmt: skip
        env.run(platforms.set_stable, request)

    found["set_stable (promotion + wait)"] = timed(rounds, promote)

    def scale(number: int) -> None:
        replicas = 0 if number % 2 == 0 else REPLICAS
        request = ScaleInput(platform=platform, workload="canary", replicas=replicas, key="k")
        env.run(platforms.scale_workload, request)

    found["scale_workload canary 0 / 4"] = timed(rounds, scale)
    clients.kubernetes.close()
    return {name: summary(values) for name, values in found.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="deployflow-kube-bench-"))
    results = with_double(workdir / "advancing", [], lambda k: measure(k, args.rounds))
    still = with_double(workdir / "still", ["--manual"], lambda k: routers_only(k, args.rounds))
    if results is None or still is None:
        print(f"the double did not start: {workdir}", file=sys.stderr)
        return 1
    if args.json:
        body = {"machine": machine(), "rounds": args.rounds, "activities": results}
        print(json.dumps(body | {"controller_still": still}))
        return 0
    print(f"machine: {machine()}; {args.rounds} rounds each")
    for title, rows in (("the double's controller advancing on every request", results),
                        ("the controller standing still (request cost only)", still)):  # fmt: skip
        print(f"\n{title}\n{'activity':36} {'median':>9} {'p95':>9} {'max':>9}")
        for name, row in rows.items():
            median, p95, top = row["median_ms"], row["p95_ms"], row["max_ms"]
            print(f"{name:36} {median:>7.1f}ms {p95:>7.1f}ms {top:>7.1f}ms")
    return 0


def with_double(
    workdir: Path, flags: list[str], work: Callable[[Path], dict[str, dict[str, float]]]
) -> dict[str, dict[str, float]] | None:
    """``work(kubeconfig)`` against a double process of its own (``flags``), stopped after."""
    workdir.mkdir(parents=True)
    kubeconfig = workdir / "kubeconfig"
    argv = [str(BIN / "python"), "-m", "activities.kubernetes.testing", *flags]
    double = Process("kube-double", [*argv, "--kubeconfig", str(kubeconfig)],
                     workdir / "kube-double.log")  # fmt: skip
    double.start()
    try:
        deadline = time.monotonic() + 30
        while not kubeconfig.exists():
            if time.monotonic() > deadline or not double.running():
                return None
            time.sleep(0.1)
        return work(kubeconfig)
    finally:
        double.stop()


if __name__ == "__main__":
    exit_now(main())
