"""The Kubernetes lanes of bench/chaos.py (``--kube``): canary rollouts through the
Kubernetes routers while their worker is SIGKILLed.

The API server double runs as a process of its own (``python -m
activities.kubernetes.testing``, its controller advancing on every request), so a killed
worker loses nothing the cluster holds. Three lanes, each a namespace of the double with
the team's Deployment ``web`` (4 replicas) and a ``deployflow worker`` of its own on its own
task queue, with ``KUBECONFIG`` pointing at the double:

    kube-ingress-nginx   canary Ingress ``canary-weight``     kube-istio   VirtualService weights
    kube-replicas        replica counts (no traffic router)

Each rollout is a canary (setWeight 20, pause 1 s, setWeight 50, pause 1 s, promotion) with
its worker killed once or twice (a replacement started at once): after a random number of
workflow tasks, or the moment a ``set_weight`` is scheduled (mid set_weight), and, for the
aborted ones, after the ``abort`` was accepted, as the rollback's first change is
scheduled (mid abort). Correct means: the expected outcome; at rest, no split (the canary
at 0 % — a promotion on Kubernetes ends with the team's Deployment on the new template and
all traffic back on it — and the canary Deployment at 0 pods, the team's at 4 available);
the team's Deployment on the new image after a promotion and on the old one otherwise; the
new version's share never going back while moving forward; nothing moved forward after an
accepted abort.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaos_history import (
    History,
    abort_accepted,
    at,
    completed,
    forward_after_abort,
    outcome,
    progress_by,
    scheduled,
    shares_applied,
    workflow_tasks,
)
from chaos_judge import Kill
from chaos_parts import BIN, DevServer, Process, Worker, until
from chaos_rollout import start
from kubernetes import client, config
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError

from workflows.core.verbs import OperatorInput
from workflows.rollouts.spec import Rollout, parse_rollout

REPLICAS = 4
IMAGE = "registry.example.test/web:{version}"
STEPS = [
    {"setWeight": 20},
    {"pause": {"duration": "1s"}},
    {"setWeight": 50},
    {"pause": {"duration": "1s"}},
]
EXPECTED = {"promote": "Promoted", "abort": "Aborted", "abort-mid-set-weight": "Aborted"}
LANES = ("kube-ingress-nginx", "kube-istio", "kube-replicas")


def router(lane: str, namespace: str) -> dict[str, Any]:
    where = {"namespace": namespace}
    if lane == "kube-ingress-nginx":
        services = {"stableService": "web", "canaryService": "web-canary"}
        return {"ingressNginx": where | {"stableIngress": "web"} | services}
    if lane == "kube-istio":
        vs = {"virtualService": {"name": "web", "routes": ["primary"]}}
        return {"istio": where | vs | {"stableService": "web", "canaryService": "web-canary"}}
    return {"replicas": where | {"deployment": "web", "replicas": REPLICAS}}


def seed_namespace(api: client.ApiClient, namespace: str) -> None:
    """The team's objects in ``namespace``: the Deployment at v0, an Ingress, a
    VirtualService (the routers read them; nothing acts on them)."""
    labels = {"app": "web"}
    container = {"name": "web", "image": IMAGE.format(version="v0")}
    client.AppsV1Api(api).create_namespaced_deployment(
        namespace,
        {
            "metadata": {"name": "web", "labels": labels},
            "spec": {
                "replicas": REPLICAS,
                "progressDeadlineSeconds": 60,
                "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}},
            },
        },
    )
    backend = {"service": {"name": "web", "port": {"number": 80}}}
    path = {"path": "/", "pathType": "Prefix", "backend": backend}
    client.NetworkingV1Api(api).create_namespaced_ingress(
        namespace,
        {
            "metadata": {"name": "web"},
            "spec": {"ingressClassName": "nginx", "rules": [{"http": {"paths": [path]}}]},
        },
    )
    route = [
        {"destination": {"host": "web"}, "weight": 100},
        {"destination": {"host": "web-canary"}, "weight": 0},
    ]
    client.CustomObjectsApi(api).create_namespaced_custom_object(
        "networking.istio.io",
        "v1",
        namespace,
        "virtualservices",
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "VirtualService",
            "metadata": {"name": "web"},
            "spec": {"hosts": ["web"], "http": [{"name": "primary", "route": route}]},
        },
    )


@dataclass
class KubeLane:
    name: str
    namespace: str
    worker: Worker
    guard: asyncio.Lock = field(default_factory=asyncio.Lock)
    version: str = "v0"
    count: int = 0

    def rollout(self, version: str, environment: str) -> Rollout:
        body = {
            "service": self.namespace,
            "environment": environment,
            "version": version,
            "router": router(self.name, self.namespace),
            "platform": {
                "kubernetes": {
                    "deployment": {
                        "name": "web",
                        "namespace": self.namespace,
                        "image": IMAGE,
                    }
                }
            },
            "strategy": {"canary": {"steps": STEPS}},
        }
        document = {"apiVersion": "deployflow/v1", "kind": "Rollout", "metadata": {"name": "web"}}
        return parse_rollout([document | {"spec": body}])

    def end_state(self, api: client.ApiClient, live: str) -> list[str]:
        """What is wrong with the lane at rest, ``live`` being the version that should run."""
        apps = client.AppsV1Api(api)
        problems = []
        stable = apps.read_namespaced_deployment("web", self.namespace)
        image = stable.spec.template.spec.containers[0].image
        if image != IMAGE.format(version=live):
            problems.append(f"the team's Deployment runs {image}, not {live}")
        available = (stable.status.available_replicas or 0, stable.spec.replicas)
        if available != (REPLICAS, REPLICAS):
            problems.append(f"the team's Deployment: {available[0]}/{available[1]} available")
        with contextlib.suppress(client.ApiException):
            canary = apps.read_namespaced_deployment("web-canary", self.namespace)
            if canary.spec.replicas:
                problems.append(f"(split) the canary Deployment has {canary.spec.replicas} pods")
        weight = self.canary_weight(api)
        if weight:
            problems.append(f"(split) the router gives the canary {weight} %")
        return problems

    def canary_weight(self, api: client.ApiClient) -> int:
        if self.name == "kube-ingress-nginx":
            try:
                ingress = client.NetworkingV1Api(api).read_namespaced_ingress(
                    "web-canary", self.namespace
                )
            except client.ApiException:
                return 0  # no canary Ingress yet: all on stable
            annotations = ingress.metadata.annotations or {}
            return int(annotations.get("nginx.ingress.kubernetes.io/canary-weight", "0"))
        if self.name == "kube-istio":
            vs: Any = client.CustomObjectsApi(api).get_namespaced_custom_object(
                "networking.istio.io", "v1", self.namespace, "virtualservices", "web"
            )
            return int(vs["spec"]["http"][0]["route"][1].get("weight", 0))
        return 0  # replica counts: the canary Deployment's pods, checked above


@dataclass
class Outcome:
    number: int
    lane: str
    scenario: str
    outcome: str = "Stuck"
    reason: str = ""
    seconds: float = 0.0
    kills: list[Kill] = field(default_factory=list)
    moments: list[str] = field(default_factory=list)
    aborted: bool = False
    problems: list[str] = field(default_factory=list)


async def kill(lane: KubeLane, result: Outcome, moment: str) -> Kill:
    """SIGKILL the lane's worker and start a replacement at once."""
    killed = Kill(at=0.0)
    async with lane.guard:
        killed.at = time.time()
        await lane.worker.kill()
        killed.pid, killed.polling = await lane.worker.start()
    result.kills.append(killed)
    result.moments.append(moment)
    return killed


async def send_abort(handle: Any, number: int, history: History) -> bool:
    request = OperatorInput(reason="bench/chaos.py --kube", by="chaos")
    deadline = time.monotonic() + 120
    while not history.closed.is_set() and time.monotonic() < deadline:
        try:
            update_id = f"kube-abort-{number}"
            await handle.execute_update("abort", request, id=update_id, result_type=str)
            return True
        except WorkflowUpdateFailedError:
            return False
        except RPCError:
            await asyncio.sleep(0.5)
    return False


async def hurt(
    lane: KubeLane, scenario: str, rng: random.Random, handle: Any, history: History,
    result: Outcome, number: int,
) -> None:  # fmt: skip
    """The plan: a kill at a random workflow task or mid set_weight; aborts mid-run, one of
    them as a set_weight is scheduled, then a kill mid-rollback."""
    timeout = 120.0
    if number % 2 == 0:
        tasks = rng.randint(1, 8)
        if await history.wait(lambda ev: workflow_tasks(ev) >= tasks, timeout):
            await asyncio.sleep(rng.uniform(0, 0.4))
            if not history.closed.is_set():
                await kill(lane, result, f"after {tasks} workflow tasks")
    else:
        nth = rng.randint(1, 3)
        if await history.wait(lambda ev: len(scheduled(ev, "set_weight")) >= nth, timeout):
            await asyncio.sleep(rng.uniform(0, 0.05))
            if not history.closed.is_set():
                await kill(lane, result, f"mid set_weight #{nth}")
    if scenario == "promote":
        return
    nth = 2 if scenario == "abort-mid-set-weight" else 1
    if scenario == "abort-mid-set-weight":
        ready = await history.wait(lambda ev: len(scheduled(ev, "set_weight")) >= nth, timeout)
    else:
        ready = await history.wait(lambda ev: len(completed(ev, "set_weight")) >= nth, timeout)
    if not ready or not await send_abort(handle, number, history):
        return
    accepted = await history.wait(abort_accepted, timeout)
    if accepted is None:
        return
    # Mid abort: as the rollback's change goes out (it may be in the accepting task).
    after = sum(e.event_id < accepted.event_id for e in scheduled(history.events, "set_weight"))
    if await history.wait(lambda ev: len(scheduled(ev, "set_weight")) > after, timeout):
        await asyncio.sleep(rng.uniform(0, 0.05))
        if not history.closed.is_set():
            await kill(lane, result, "mid abort (the rollback's set_weight)")


def forward_problem(shares: list[int], promoted: bool) -> str | None:
    """Shares going back while moving forward: on promotion the last change (traffic back to
    the team's Deployment, now on the new template) is left out."""
    if promoted and shares and shares[-1] == 0:
        shares = shares[:-1]
    peak, back = 0, False
    for value in shares:
        if back and value > 0:
            return f"set_weight results {shares}: traffic moved forward again after going back"
        if value < peak:
            back = True
        peak = max(peak, value)
    return None


async def run_one(
    temporal: Client, api: client.ApiClient, lane: KubeLane, scenario: str, number: int,
    rng: random.Random, stamp: str,
) -> Outcome:  # fmt: skip
    lane.count += 1
    version, old = f"v{lane.count}", lane.version
    rollout = lane.rollout(version, f"k{number}-{stamp}")
    result = Outcome(number, lane.name, scenario)
    began = time.time()
    handle = await start(temporal, rollout, lane.worker.env["DEPLOYFLOW_TASK_QUEUE"], "chaos")
    history = History(temporal, handle.id, handle.result_run_id)
    chaos = asyncio.create_task(hurt(lane, scenario, rng, handle, history, result, number))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(history.closed.wait(), 240)
    chaos.cancel()
    await asyncio.gather(chaos, return_exceptions=True)
    events = history.events
    await history.close()
    result.seconds = time.time() - began
    result.outcome, result.reason = outcome(events)
    result.aborted = abort_accepted(events) is not None
    end = at(events[-1]) if events else time.time()
    landed = [(k, m) for k, m in zip(result.kills, result.moments, strict=True) if k.at < end]
    result.kills, result.moments = [k for k, _ in landed], [m for _, m in landed]
    for k in result.kills:
        k.progress = progress_by(events, k.pid, k.at)
    expected = EXPECTED[scenario] if result.aborted or scenario == "promote" else "Promoted"
    if result.outcome != expected:
        result.problems.append(f"expected {expected}, got {result.outcome}: {result.reason}")
    live = version if result.outcome == "Promoted" else old
    result.problems += await asyncio.to_thread(lane.end_state, api, live)
    wrong = forward_problem(shares_applied(events, "canary"), result.outcome == "Promoted")
    if wrong:
        result.problems.append(wrong)
    result.problems += forward_after_abort(events, "canary", version)
    if result.outcome == "Promoted":
        lane.version = version
    return result


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else 0.0


def slowest(results: list[Outcome], count: int = 5) -> list[str]:
    """The kills whose replacement took longest to make progress once it polled."""
    found = [
        (k.progress - k.polling, f"#{r.number} {r.lane} {moment}")
        for r in results
        for k, moment in zip(r.kills, r.moments, strict=True)
        if k.progress and k.polling
    ]
    return [f"{what}: {seconds:.2f} s" for seconds, what in sorted(found, reverse=True)[:count]]


def report(results: list[Outcome], seconds: float) -> dict[str, Any]:
    kills = [k for r in results for k in r.kills]
    latency = [k.progress - k.polling for k in kills if k.progress and k.polling]
    stalled = [k.progress - k.at for k in kills if k.progress]
    return {
        "rollouts": len(results),
        "correct": sum(not r.problems for r in results),
        "split_end_states": sum(any("(split)" in p for p in r.problems) for r in results),
        "outcomes": {o: sum(r.outcome == o for r in results) for o in {r.outcome for r in results}},
        "kills": len(kills),
        "kills_mid_set_weight": sum(
            m.startswith("mid set_weight") for r in results for m in r.moments
        ),
        "kills_mid_abort": sum("mid abort" in m for r in results for m in r.moments),
        "ready_to_progress_s": {
            "median": round(percentile(latency, 0.5), 2),
            "p95": round(percentile(latency, 0.95), 2),
            "max": round(max(latency, default=0.0), 2),
        },
        "kill_to_progress_s": {
            "median": round(percentile(stalled, 0.5), 2),
            "p95": round(percentile(stalled, 0.95), 2),
            "max": round(max(stalled, default=0.0), 2),
        },
        "slowest_after_ready": slowest(results),
        "rollout_s_median": round(percentile([r.seconds for r in results], 0.5), 1),
        "wall_s": round(seconds),
    }


async def run_kube(
    workdir: Path, server: DevServer, temporal: Client, rollouts: int, seed: int, stamp: str,
    max_minutes: float,
) -> int:  # fmt: skip
    """The Kubernetes lanes; exit code 0 only if every rollout was correct."""
    kubeconfig = workdir / "kubeconfig"
    argv = [str(BIN / "python"), "-m", "activities.kubernetes.testing"]
    double = Process("kube-double", [*argv, "--kubeconfig", str(kubeconfig)],
                     workdir / "kube-double.log")  # fmt: skip
    double.start()
    lanes: list[KubeLane] = []
    results: list[Outcome] = []
    began = time.time()
    try:
        await until(kubeconfig.exists, f"the API server double ({double.log})", 30)
        api = config.new_client_from_config(str(kubeconfig))
        for name in LANES:
            namespace = name.removeprefix("kube-")
            await asyncio.to_thread(seed_namespace, api, namespace)
            worker = Worker(server.address, f"chaos-{name}-{stamp}", workdir / f"{name}.log")
            worker.env["KUBECONFIG"] = str(kubeconfig)
            await worker.start()
            lanes.append(KubeLane(name, namespace, worker))
        rng = random.Random(seed)
        scenarios = ["promote", "abort", "abort-mid-set-weight"]
        plan = [(lanes[i % len(lanes)], rng.choice(scenarios)) for i in range(rollouts)]
        rngs = [random.Random(f"{seed}-{number}") for number in range(1, rollouts + 1)]
        deadline = time.monotonic() + max_minutes * 60

        async def lane_loop(lane: KubeLane) -> None:
            for number, (owner, scenario) in enumerate(plan, start=1):
                if owner is not lane or time.monotonic() > deadline:
                    continue
                chance = rngs[number - 1]
                result = await run_one(temporal, api, lane, scenario, number, chance, stamp)
                results.append(result)
                mark = "ok" if not result.problems else "WRONG: " + "; ".join(result.problems)
                moments = ", ".join(result.moments) or "no kill landed"
                print(f"  #{number:02d} {lane.name} {scenario}: {result.outcome} "
                      f"in {result.seconds:.1f}s, killed {moments} — {mark}",
                      file=sys.stderr)  # fmt: skip

        await asyncio.gather(*(lane_loop(lane) for lane in lanes))
    finally:
        for lane in lanes:
            with contextlib.suppress(Exception):
                await lane.worker.stop()
        double.stop()
    summary = report(results, time.time() - began)
    print(json.dumps(summary, indent=2))
    return 0 if results and summary["correct"] == len(results) == rollouts else 1
