"""The time of one traffic shift through a router with instances (``router.instances``):
two NGINX and two HAProxy on 127.0.0.1, each with its own agent (``deployflow worker
--host NAME``, a real process), workflows on a central ``deployflow worker`` process, a
fresh dev server. The same canary runs through each router three ways: without instances
(the central worker applies it), with one instance (one agent), with two (two agents).

A shift's time is read from the rollout's history: from the first ``set_weight`` of a step
scheduled to the last one of that step completed (every instance reported). Also printed:
the time of a whole canary.

With ``--kills N``: N canaries per router on both agents instead, each with one agent
SIGKILLed at a random moment and restarted at once (what systemd ``Restart=always`` does);
every rollout must end Promoted with both load balancers on the same split, each shift
scheduled only after both reported the one before. Prints those counts and how much longer
a rollout with a kill took.

    .venv/bin/python bench/instance_shift.py [--runs 3] [--steps 9] [--kills 10] [--seed 1]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import random
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
from workflows.rollouts.models import RolloutPhase, RolloutResult

CENTRAL = "bench-central"


def shift_times(history: WorkflowHistory) -> dict[str, tuple[float, float]]:
    """Per shift (label), when its first ``set_weight`` was scheduled and its last one
    completed, in history order."""
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
    return {label: (first[label], last[label]) for label in first if label in last}


def shift_seconds(history: WorkflowHistory) -> list[float]:
    return [done - began for began, done in shift_times(history).values()]


def in_step(history: WorkflowHistory) -> bool:
    """Whether each shift was scheduled only after every instance completed the last."""
    spans = list(shift_times(history).values())
    return all(later[0] >= earlier[1] for earlier, later in itertools.pairwise(spans))


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


async def run_canary(
    client: Client, router: dict[str, Any], steps: int, tag: str
) -> tuple[RolloutResult, WorkflowHistory]:
    shares = [round(100 * (i + 1) / (steps + 1)) for i in range(steps)]
    rollout = canary_rollout(f"{tag}-{run_stamp()}", [{"setWeight": s} for s in shares],
                             router=router)  # fmt: skip
    handle = await client.start_workflow(
        CanaryRollout.run, rollout, id=rollout.workflow_id, task_queue=CENTRAL
    )
    return await handle.result(), await handle.fetch_history()


async def run_one(client: Client, router: dict[str, Any], steps: int, tag: str) -> list[float]:
    result, history = await run_canary(client, router, steps, tag)
    if result.outcome is not RolloutPhase.PROMOTED:
        raise SystemExit(f"{tag}: {result.outcome.value}: {result.reason}")
    return shift_seconds(history)


async def killed_mid_shift(
    client: Client, pair: list[Router], agents: dict[str, Worker], steps: int, tag: str,
    kills: int, rng: random.Random,
) -> str:  # fmt: skip
    """``kills`` canaries, each with one agent SIGKILLed at a random moment and restarted."""
    router = router_with(pair, list(agents), 2)
    at_rest = Weights(stable=100, canary=0)
    clean = time.monotonic()
    await run_one(client, router, steps, f"{tag}-clean")
    clean = time.monotonic() - clean
    promoted = split = out_of_step = missed = 0
    longer: list[float] = []
    for n in range(kills):
        began = time.monotonic()
        run = asyncio.create_task(run_canary(client, router, steps, f"{tag}-kill{n}"))
        await asyncio.sleep(rng.uniform(0.05, 0.8) * clean)  # a random moment of the run
        missed += run.done()
        victim = agents[rng.choice(list(agents))]
        await victim.kill()
        await victim.start()  # its supervisor restarts it
        result, history = await run
        longer.append(time.monotonic() - began - clean)
        promoted += result.outcome is RolloutPhase.PROMOTED
        weights = [lane.weights() for lane in pair]
        # A promoted canary leaves its list live; the next one runs on the other list.
        if weights[0] not in (Weights(stable=0, canary=100), at_rest) or weights[1] != weights[0]:
            split += 1
            print(f"  {tag}-kill{n}: {result.outcome.value}, load balancers at {weights}")
        out_of_step += not in_step(history)
    return (
        f"{promoted}/{kills} promoted, {split} ended split, {out_of_step} moved on out of "
        f"step, {missed} kills after the end; a rollout with a kill took "
        f"{summary(longer, 's')} longer than a clean one ({clean:.2f} s)"
    )


async def main(runs: int, steps: int, kills: int, seed: int) -> None:
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
        if kills:
            rng = random.Random(seed)
            agents = dict(zip(names, workers[1:], strict=True))
            print(f"work dir {work}; per router {kills} canaries of {steps} shifts, each with "
                  f"an agent SIGKILLed and restarted (seed {seed})\n")  # fmt: skip
            for kind, pair in lanes.items():
                line = await killed_mid_shift(client, pair, agents, steps, kind, kills, rng)
                print(f"{kind:<8} 2 agents: {line}")
            return
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
    parser.add_argument("--kills", type=int, default=0, help="canaries with an agent killed")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.steps, args.kills, args.seed))
    exit_now(0)
