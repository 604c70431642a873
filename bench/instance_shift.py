"""The time of one traffic shift through a router with instances (``router.instances``):
two NGINX and two HAProxy on 127.0.0.1, each with its own agent (``deployflow worker
--host NAME``, a real process), workflows on a central ``deployflow worker`` process, a
fresh dev server. The same canary runs through each router three ways: without instances
(the central worker applies it), with one instance (one agent), with two (two agents).

A shift's time is read from the rollout's history: from the first ``set_weight`` of a step
scheduled to the last one of that step completed (every instance reported). Also printed:
the step-to-step spacing of the rollout (what a canary step costs end to end).

    .venv/bin/python bench/instance_shift.py [--runs 3] [--steps 9]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from chaos_parts import DevServer, Worker, free_port
from chaos_traffic import HAProxyLane, NginxLane, Router
from common import canary_rollout, exit_now, machine, run_stamp, summary
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory

from activities.routing.base import Weights
from workflows.rollouts.canary import CanaryRollout
from workflows.rollouts.models import RolloutPhase

CENTRAL = "bench-central"


def shift_seconds(history: WorkflowHistory) -> list[float]:
    """Per shift (label), first ``set_weight`` scheduled → last completed, in seconds."""
    label_of: dict[int, str] = {}
    first: dict[str, float] = {}
    last: dict[str, float] = defaultdict(float)
    for event in history.events:
        at = event.event_time.ToDatetime().timestamp()
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = event.activity_task_scheduled_event_attributes
            if attrs.activity_type.name == "set_weight":
                label = json.loads(event.user_metadata.summary.data).rsplit(" on ", 1)[0]
                label_of[event.event_id] = label
                first.setdefault(label, at)
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            label = label_of.get(event.activity_task_completed_event_attributes.scheduled_event_id)
            if label is not None:
                last[label] = max(last[label], at)
    return [last[label] - first[label] for label in first if label in last]


def router_with(lanes: list[Router], names: list[str], count: int) -> dict[str, Any]:
    """The first lane's router, on ``count`` instances (0: none, the central worker's)."""
    router = lanes[0].spec()
    if count == 0:
        return router
    kind = next(iter(router))
    local = ("configPath", "testCommand", "reloadCommand", "socket", "checkCommand")
    instances = []
    for lane, name in zip(lanes[:count], names, strict=False):
        own = lane.spec()[kind]
        instances.append({"name": name} | {k: own[k] for k in local if k in own})
    return {**router, "instances": instances}


async def run_one(client: Client, router: dict[str, Any], steps: int, tag: str) -> list[float]:
    shares = [round(100 * (i + 1) / (steps + 1)) for i in range(steps)]
    rollout = canary_rollout(f"{tag}-{run_stamp()}", [{"setWeight": s} for s in shares],
                             router=router)  # fmt: skip
    handle = await client.start_workflow(
        CanaryRollout.run, rollout, id=rollout.workflow_id, task_queue=CENTRAL
    )
    result = await handle.result()
    if result.outcome is not RolloutPhase.PROMOTED:
        raise SystemExit(f"{tag}: {result.outcome.value}: {result.reason}")
    return shift_seconds(await handle.fetch_history())


async def main(runs: int, steps: int) -> None:
    print(machine())
    work = Path(tempfile.mkdtemp(prefix="deployflow-instance-shift-"))
    server = DevServer(work)
    await server.start()
    client = await server.client()
    dummy = [f"127.0.0.1:{free_port()}"], [f"127.0.0.1:{free_port()}"]
    at_rest = Weights(stable=100, canary=0)
    lanes: dict[str, list[Router]] = {
        "nginx": [NginxLane(work / f"nginx-{i}", f"nginx{i}", *dummy, at_rest) for i in (1, 2)],
        "haproxy": [HAProxyLane(work / f"hap-{i}", "app", *dummy, at_rest) for i in (1, 2)],
    }
    names = ["lb-a", "lb-b"]
    workers = [Worker(server.address, CENTRAL, work / "central.log")]
    workers += [Worker(server.address, "", work / f"{n}.log", ("--host", n)) for n in names]
    try:
        for lane in (*lanes["nginx"], *lanes["haproxy"]):
            await lane.start()
        for worker in workers:
            await worker.start()
        print(f"work dir {work}; {runs} canaries of {steps} shifts + promotion per row\n")
        for kind, pair in lanes.items():
            for count in (0, 1, 2):
                router = router_with(pair, names, count)
                await run_one(client, router, 2, f"warm-{kind}{count}")  # imports, caches
                shifts: list[float] = []
                began = time.monotonic()
                for _ in range(runs):
                    shifts += await run_one(client, router, steps, f"{kind}{count}")
                per_rollout = (time.monotonic() - began) / runs
                where = {0: "central worker", 1: "1 agent", 2: "2 agents"}[count]
                print(f"{kind:<8} {where:<15} shift {summary(shifts, 'ms', 1000)}; "
                      f"rollout {per_rollout:.2f} s")  # fmt: skip
    finally:
        for worker in workers:
            await worker.stop()
        for lane in (*lanes["nginx"], *lanes["haproxy"]):
            lane.process.stop()
        server.process.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--steps", type=int, default=9)
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.steps))
    exit_now(0)
