"""Many concurrent canary rollouts on one worker: do their pause timers fire on time?

DESIGN §6 target: "≥ 200 concurrent rollouts on one worker on 2 cores with timers firing
within 1 s".

Starts a fresh dev server (``temporal server start-dev`` from the venv: in-memory, real
time) or uses ``--address``, one in-process worker (real ``CanaryRollout``, no-op
``set_weight`` registered by name), then starts ``--rollouts`` rollouts, all at once
(default: the worst case, every pause timer fires within the same second or two) or evenly
over ``--spread`` seconds; distinct environments, so distinct workflow ids. Each is
``setWeight 10`` → ``pause 5s`` → ``setWeight 100``.

Lateness of a pause = start of the step after it - (start of the pause step + pause), from
the rollout's own timeline (``RolloutResult.events``, workflow clock). The pause step's
time is when its workflow task started, before the timer was created, so the lateness also
includes that task's processing: an upper bound on the timer's delay. The histories then
split it: how late the server fired the timer, and how long until the worker started the
workflow task it produced.

    .venv/bin/python bench/concurrent_rollouts.py [--rollouts 200] [--pause 5] [--spread 0]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import time
import uuid
from datetime import timedelta
from typing import Any

from common import (
    STUB_ROUTER,
    canary_rollout,
    children_cpu_s,
    children_peak_rss_mib,
    connect_or_start,
    exit_now,
    machine,
    percentile,
    run_stamp,
    summary,
)
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle
from temporalio.worker import Worker

from workflows.rollouts.canary import CanaryRollout
from workflows.rollouts.models import RolloutPhase, RolloutResult


def lateness_s(result: RolloutResult, pause: float) -> float:
    """Next step's start - (pause step's start + pause), in seconds."""
    steps = [e for e in result.events if e.kind == "step"]
    if len(steps) != 3:
        raise RuntimeError(f"{result.environment}: expected 3 step events, got {len(steps)}")
    expected = steps[1].at + timedelta(seconds=pause)
    return (steps[2].at - expected).total_seconds()


async def timer_breakdown(
    handle: WorkflowHandle[CanaryRollout, RolloutResult], pause: float
) -> tuple[float, float, float]:
    """The pause's lateness in three parts, from the history (server clock):

    - the pause step's workflow task: started → completed (the timer starts at completion),
    - the timer: TimerFired - TimerStarted - pause,
    - the worker picking up the task the timer produced: TimerFired → WorkflowTaskStarted.
    """
    task_started = timer_started = fired = None
    processing = fired_late = dispatch = float("nan")
    async for event in handle.fetch_history_events():
        at = event.event_time.ToDatetime()
        kind = event.event_type
        if kind == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
            if fired is not None:
                dispatch = (at - fired).total_seconds()
                break
            task_started = at
        elif kind == EventType.EVENT_TYPE_TIMER_STARTED and task_started is not None:
            timer_started = at
            processing = (at - task_started).total_seconds()
        elif kind == EventType.EVENT_TYPE_TIMER_FIRED and timer_started is not None:
            fired = at
            fired_late = (at - timer_started).total_seconds() - pause
    return processing, fired_late, dispatch


def peak_rss_mib() -> float:
    """Peak resident set of this process (worker, client and bench; Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_open(spans: list[tuple[float, float]]) -> int:
    """Most executions open at the same moment, from (start returned, result arrived)."""
    edges = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    running = peak = 0
    for _, change in edges:
        running += change
        peak = max(peak, running)
    return peak


async def main_async(args: argparse.Namespace) -> int:
    print(f"machine: {machine()}")
    client, env = await connect_or_start(args.address)
    stamp = run_stamp()
    steps: list[dict[str, Any]] = [
        {"setWeight": 10},
        {"pause": {"duration": f"{args.pause:g}s"}},
        {"setWeight": 100},
    ]
    rollouts = [canary_rollout(f"many-{stamp}-{i}", steps) for i in range(args.rollouts)]
    task_queue = f"bench-many-{uuid.uuid4().hex[:8]}"
    gate = asyncio.Semaphore(args.start_concurrency)
    rss_before = peak_rss_mib()
    cpu_before = time.process_time()
    server_cpu_before = children_cpu_s()
    how = "at once" if args.spread == 0 else f"spread evenly over {args.spread:g} s"
    print(
        f"{args.rollouts} rollouts {how}: setWeight 10 → pause {args.pause:g}s → setWeight 100",
        flush=True,
    )

    opened: dict[int, float] = {}

    async def start(index: int, began: float) -> WorkflowHandle[CanaryRollout, RolloutResult]:
        await asyncio.sleep(
            max(0.0, began + index * args.spread / args.rollouts - time.monotonic())
        )
        async with gate:
            rollout = rollouts[index]
            handle = await client.start_workflow(
                CanaryRollout.run, rollout, id=rollout.workflow_id, task_queue=task_queue
            )
            opened[index] = time.monotonic()
            return handle

    async def finished(
        index: int, handle: WorkflowHandle[CanaryRollout, RolloutResult]
    ) -> tuple[RolloutResult, tuple[float, float]]:
        result = await handle.result()
        return result, (opened[index], time.monotonic())

    try:
        async with Worker(
            client,
            task_queue=task_queue,
            workflows=[CanaryRollout],
            activities=STUB_ROUTER,
        ):
            began = time.monotonic()
            handles = await asyncio.gather(*(start(i, began) for i in range(args.rollouts)))
            started_in = time.monotonic() - began
            print(f"  started all in {started_in:.2f} s", flush=True)
            done = await asyncio.wait_for(
                asyncio.gather(*(finished(i, h) for i, h in enumerate(handles))),
                timeout=args.timeout,
            )
            results = [result for result, _ in done]
            wall = time.monotonic() - began
            cpu = time.process_time() - cpu_before
            server_cpu = children_cpu_s() - server_cpu_before
            server_rss = children_peak_rss_mib()
        fetch_gate = asyncio.Semaphore(20)

        async def breakdown(
            handle: WorkflowHandle[CanaryRollout, RolloutResult],
        ) -> tuple[float, float, float]:
            async with fetch_gate:
                return await timer_breakdown(handle, args.pause)

        timers = await asyncio.gather(*(breakdown(h) for h in handles))
    finally:
        if env is not None:
            await env.shutdown()

    promoted = sum(1 for r in results if r.outcome is RolloutPhase.PROMOTED)
    late = [lateness_s(r, args.pause) for r in results]
    processing, fired_late, dispatch = ([t[i] for t in timers if t[i] == t[i]] for i in range(3))
    over = sum(1 for v in late if v > args.target_s)
    print(f"\n{args.rollouts} rollouts: {promoted} promoted, {len(results) - promoted} other")
    print(f"  peak open at once: {peak_open([span for _, span in done])}")
    print(f"pause lateness (next step start - pause start - {args.pause:g} s):")
    print(f"  {summary(late, unit='ms', scale=1000)}; over {args.target_s:g} s: {over}")
    print("where it goes, from the histories (server clock):")
    print(f"  pause step's workflow task (worker):    {summary(processing, 'ms', 1000)}")
    print(f"  timer fired late by (server):           {summary(fired_late, 'ms', 1000)}")
    print(f"  fired → next workflow task started:     {summary(dispatch, 'ms', 1000)}")
    print(
        f"total wall time {wall:.1f} s (first start to last result; the ideal is "
        f"{args.spread + args.pause:g} s plus two weight changes)"
    )
    print(
        f"bench process (worker + client): peak RSS {peak_rss_mib():.0f} MiB "
        f"(before the worker started: {rss_before:.0f} MiB), CPU {cpu:.1f} s"
    )
    if env is not None:
        print(f"dev server: peak RSS {server_rss:.0f} MiB, CPU {server_cpu:.1f} s")
    p95 = percentile(late, 95)
    verdict = "met" if max(late) <= args.target_s and promoted == args.rollouts else "MISSED"
    print(
        f"target: {args.rollouts} concurrent rollouts, timers within {args.target_s:g} s: "
        f"{verdict} (median {statistics.median(late) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, "
        f"max {max(late) * 1000:.0f} ms)"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0] if __doc__ else None,
        epilog="Prints numbers; the exit code does not depend on the target.",
    )
    parser.add_argument("--rollouts", type=int, default=200, help="concurrent rollouts")
    parser.add_argument("--pause", type=float, default=5.0, help="pause step, seconds")
    parser.add_argument(
        "--spread", type=float, default=0.0, help="start evenly over this many seconds"
    )
    parser.add_argument(
        "--start-concurrency", type=int, default=50, help="start_workflow calls in flight"
    )
    parser.add_argument("--timeout", type=float, default=150.0, help="bound on the whole run, s")
    parser.add_argument("--address", help="use this running server instead of a fresh one")
    parser.add_argument("--target-s", type=float, default=1.0, help="DESIGN §6 target")
    args = parser.parse_args(argv)
    if not 1 <= args.rollouts <= 2000 or not 0 < args.pause <= 120:
        parser.error("need 1 <= --rollouts <= 2000 and 0 < --pause <= 120")
    if not 0 <= args.spread <= 120:
        parser.error("need 0 <= --spread <= 120")
    if not 1 <= args.start_concurrency <= 500 or not 10 <= args.timeout <= 600:
        parser.error("need 1 <= --start-concurrency <= 500 and 10 <= --timeout <= 600")
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    exit_now(main())
