"""Orchestration overhead per canary step on a local Temporal dev server.

DESIGN §6 target: "orchestration overhead per step ≤ 20 ms median on the dev server".

Starts a fresh dev server (``temporal server start-dev`` from the venv: in-memory, real
time, no UI) or uses ``--address``, and one in-process worker running the real
``CanaryRollout`` with a no-op ``set_weight`` activity registered by name. Each rollout has
``--steps`` ``setWeight`` steps (1, 2, ..., N-1, then 100) and no analysis. Overhead per
step = wall time from ``start_workflow`` to the result / number of steps.

Also printed, to say where the time goes: the spacing of consecutive steps on the
rollout's own timeline, the history size per step, the median gaps between history events
(workflow task dispatch and processing, activity execution), and the same numbers for a
bare workflow that only calls ``set_weight`` in a loop (bench/baseline_workflow.py): the
floor set by Temporal and the Python SDK on this machine.

    .venv/bin/python bench/step_overhead.py [--steps 51] [--runs 5] [--warmup 1]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field

from baseline_workflow import BareSetWeightLoop
from common import (
    STUB_ROUTER,
    canary_rollout,
    children_cpu_s,
    connect_or_start,
    exit_now,
    machine,
    run_stamp,
    summary,
)
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory
from temporalio.worker import Worker

from workflows.rollouts.canary import CanaryRollout
from workflows.rollouts.models import RolloutPhase

E = EventType
# Consecutive history events whose gap is reported (median over all occurrences).
GAPS = {
    (E.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED, E.EVENT_TYPE_WORKFLOW_TASK_STARTED): (
        "workflow task dispatch (scheduled → started)"
    ),
    (E.EVENT_TYPE_WORKFLOW_TASK_STARTED, E.EVENT_TYPE_WORKFLOW_TASK_COMPLETED): (
        "workflow task processing (started → completed)"
    ),
    (E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, E.EVENT_TYPE_ACTIVITY_TASK_STARTED): (
        "activity dispatch (scheduled → started)"
    ),
    (E.EVENT_TYPE_ACTIVITY_TASK_STARTED, E.EVENT_TYPE_ACTIVITY_TASK_COMPLETED): (
        "no-op activity (started → completed)"
    ),
}


@dataclass
class Run:
    steps: int
    wall_s: float
    step_gaps_s: list[float]  # step event to the next step event (workflow clock)
    events: int
    workflow_tasks: int
    activities: int
    event_gaps_ms: dict[str, list[float]] = field(default_factory=dict)
    worker_cpu_s: float = 0.0  # this process: worker, client, bench
    server_cpu_s: float = 0.0  # the dev server, when this script started it

    @property
    def per_step_ms(self) -> float:
        return self.wall_s / self.steps * 1000


def weights_for(steps: int) -> list[int]:
    """1, 2, ..., steps-1, then 100: every step really changes the weight."""
    return [*range(1, steps), 100]


def history_numbers(history: WorkflowHistory) -> tuple[int, int, int, dict[str, list[float]]]:
    kinds = [e.event_type for e in history.events]
    gaps: dict[str, list[float]] = defaultdict(list)
    for before, after in itertools.pairwise(history.events):
        name = GAPS.get((before.event_type, after.event_type))
        if name is not None:
            delta = after.event_time.ToDatetime() - before.event_time.ToDatetime()
            gaps[name].append(delta.total_seconds() * 1000)
    return (
        len(kinds),
        kinds.count(E.EVENT_TYPE_WORKFLOW_TASK_COMPLETED),
        kinds.count(E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED),
        dict(gaps),
    )


async def one_run(client: Client, task_queue: str, steps: int, environment: str, bare: bool) -> Run:
    rollout = canary_rollout(environment, [{"setWeight": w} for w in weights_for(steps)])
    started = time.perf_counter()
    cpu_before, server_before = time.process_time(), children_cpu_s()
    step_gaps: list[float] = []
    if bare:
        bare_handle = await client.start_workflow(
            BareSetWeightLoop.run,
            rollout,
            id=f"bench-bare-{environment}",
            task_queue=task_queue,
        )
        done = await asyncio.wait_for(bare_handle.result(), timeout=120)
        wall = time.perf_counter() - started
        cpu, server = time.process_time() - cpu_before, children_cpu_s() - server_before
        if done != steps:
            raise RuntimeError(f"{bare_handle.id} ran {done} of {steps} steps")
        history = await bare_handle.fetch_history()
    else:
        handle = await client.start_workflow(
            CanaryRollout.run, rollout, id=rollout.workflow_id, task_queue=task_queue
        )
        result = await asyncio.wait_for(handle.result(), timeout=120)
        wall = time.perf_counter() - started
        cpu, server = time.process_time() - cpu_before, children_cpu_s() - server_before
        if result.outcome is not RolloutPhase.PROMOTED:
            raise RuntimeError(f"{handle.id} ended {result.outcome.value}: {result.reason}")
        at = [e.at for e in result.events if e.kind == "step"]
        step_gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(at)]
        history = await handle.fetch_history()
    events, tasks, activities, gaps = history_numbers(history)
    return Run(steps, wall, step_gaps, events, tasks, activities, gaps, cpu, server)


async def series(
    client: Client, task_queue: str, args: argparse.Namespace, bare: bool
) -> list[Run]:
    name = "bare set_weight loop" if bare else "CanaryRollout"
    print(f"{name}: {args.steps} setWeight steps, {args.warmup} warm-up + {args.runs} runs")
    stamp = run_stamp()
    runs: list[Run] = []
    for number in range(args.warmup + args.runs):
        warm = number < args.warmup
        run = await one_run(client, task_queue, args.steps, f"steps-{stamp}-{number}", bare)
        label = "warm-up" if warm else f"run {number - args.warmup + 1}"
        spacing = (
            f"; step spacing median {statistics.median(run.step_gaps_s) * 1000:.1f} ms"
            if run.step_gaps_s
            else ""
        )
        print(
            f"  {label:<8} {run.wall_s * 1000:6.0f} ms = {run.per_step_ms:5.1f} ms/step"
            f"{spacing}; history {run.events} events, {run.workflow_tasks} workflow tasks, "
            f"{run.activities} activities",
            flush=True,
        )
        if not warm:
            runs.append(run)
    return runs


def report(name: str, runs: list[Run]) -> float:
    per_step = [r.per_step_ms for r in runs]
    last = runs[-1]
    print(f"\n{name}")
    print(f"  per step (wall / steps) over {len(runs)} runs: {summary(per_step)}")
    spacing = [g for r in runs for g in r.step_gaps_s]
    if spacing:
        print(f"  step spacing on the rollout timeline: {summary(spacing, scale=1000)}")
    print(
        f"  history per step: {last.events / last.steps:.1f} events, "
        f"{last.workflow_tasks / last.steps:.2f} workflow tasks, "
        f"{last.activities / last.steps:.2f} activities "
        f"({last.events} events for {last.steps} steps, incl. start and finish)"
    )
    for gap in GAPS.values():
        values = [v for r in runs for v in r.event_gaps_ms.get(gap, [])]
        if values:
            print(f"  {gap:<48} median {statistics.median(values):5.1f} ms")
    worker = statistics.median(r.worker_cpu_s / r.steps * 1000 for r in runs)
    server = statistics.median(r.server_cpu_s / r.steps * 1000 for r in runs)
    print(f"  CPU per step: worker process {worker:.1f} ms, dev server {server:.1f} ms")
    return statistics.median(per_step)


async def main_async(args: argparse.Namespace) -> int:
    print(f"machine: {machine()}")
    client, env = await connect_or_start(args.address)
    try:
        task_queue = f"bench-steps-{uuid.uuid4().hex[:8]}"
        async with Worker(
            client,
            task_queue=task_queue,
            workflows=[CanaryRollout, BareSetWeightLoop],
            activities=STUB_ROUTER,
        ):
            canary = await series(client, task_queue, args, bare=False)
            bare = await series(client, task_queue, args, bare=True) if args.baseline else []
    finally:
        if env is not None:
            await env.shutdown()
    median = report("CanaryRollout", canary)
    if bare:
        floor = report("bare set_weight loop (Temporal + SDK floor)", bare)
        print(f"\nCanaryRollout above the floor: {median - floor:+.1f} ms/step")
    verdict = "met" if median <= args.target_ms else "MISSED"
    print(f"target ≤ {args.target_ms:g} ms median per step: {verdict} ({median:.1f} ms)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0] if __doc__ else None,
        epilog="Prints numbers; the exit code does not depend on the target.",
    )
    parser.add_argument("--steps", type=int, default=51, help="setWeight steps per rollout")
    parser.add_argument("--runs", type=int, default=5, help="measured rollouts per series")
    parser.add_argument("--warmup", type=int, default=1, help="rollouts run first, not counted")
    parser.add_argument(
        "--no-baseline",
        dest="baseline",
        action="store_false",
        help="skip the bare set_weight loop series",
    )
    parser.add_argument(
        "--address", help="use this running server (host:port) instead of a fresh dev server"
    )
    parser.add_argument("--target-ms", type=float, default=20.0, help="DESIGN §6 target")
    args = parser.parse_args(argv)
    if not 2 <= args.steps <= 500 or not 1 <= args.runs <= 50 or not 0 <= args.warmup <= 10:
        parser.error("need 2 <= --steps <= 500, 1 <= --runs <= 50, 0 <= --warmup <= 10")
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    exit_now(main())
