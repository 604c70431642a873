"""CLI latency: how long `deployflow` commands take, start to exit, as a user runs them.

DESIGN §6 target: "CLI commands that only talk to Temporal: ≤ 0.3 s".

Starts a fresh dev server (``temporal server start-dev`` from the venv: in-memory, real
time) or uses ``--address``, one in-process worker on a private task queue (the real
``CanaryRollout`` and ``PromotionPipeline``, no-op router activities), then one canary
rollout held at ``pause: {}`` and one pipeline held at an approval gate, so ``status``
has something to query. Then it runs every command ``--runs`` times as a subprocess (the
venv's ``deployflow`` console script, ``TEMPORAL_ADDRESS`` and ``DEPLOYFLOW_TASK_QUEUE``
set), after ``--warmup`` runs that are not counted, and prints the median, p95 and
minimum wall time (fork to exit) and the median CPU time (user + system) of each. On a
shared machine the minimum and the CPU time say more than the median about the command.
``rollout pause`` and ``rollout resume`` alternate, so the rollout stays where it is.

Three reference rows are not commands: ``python -c pass`` (the interpreter alone),
``import temporalio.client`` (what any command that talks to Temporal pays first) and the
SDK floor: that import, ``Client.connect`` and one ``list_workflows`` call, which is about
the least a command that talks to Temporal can cost.

``--baseline DIR`` also runs every ``deployflow`` command with ``PYTHONPATH=DIR`` (another
tree's code, e.g. ``git archive main | tar -x -C DIR``), interleaved with this tree's runs
so both see the same load, as extra rows marked ``[baseline]``.

    .venv/bin/python bench/cli_latency.py [--runs 20] [--warmup 2] [--address HOST:PORT]
                                          [--baseline DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import (
    DUMMY_ROUTER,
    STUB_ROUTER,
    canary_rollout,
    connect_or_start,
    exit_now,
    machine,
    percentile,
    run_stamp,
)
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from workflows.promotion.models import PipelineRequest
from workflows.promotion.pipeline import PromotionPipeline
from workflows.promotion.spec import parse_pipeline
from workflows.rollouts.canary import CanaryRollout
from workflows.rollouts.models import RolloutPhase
from workflows.rollouts.registry import BY_STRATEGY

DEPLOYFLOW = Path(sys.executable).parent / "deployflow"
READY_TIMEOUT_S = 30.0
SDK_FLOOR = """
import asyncio, os
from temporalio.client import Client

async def main():
    client = await Client.connect(os.environ["TEMPORAL_ADDRESS"])
    [wf async for wf in client.list_workflows(limit=1)]

asyncio.run(main())
os._exit(0)
"""


@dataclass
class Command:
    label: str
    argv: list[str]
    only_temporal: bool = True  # the target applies
    env: dict[str, str] = field(default_factory=dict)  # on top of the bench's environment
    wall_s: list[float] = field(default_factory=list)
    cpu_s: list[float] = field(default_factory=list)


def commands(service: str, env_name: str, pipeline: str, baseline: Path | None) -> list[Command]:
    cli = [str(DEPLOYFLOW)]
    python = [sys.executable, "-c"]
    measured = [
        Command("python -c pass (reference)", [*python, "pass"], only_temporal=False),
        Command(
            "import temporalio.client (reference)",
            [*python, "import os, temporalio.client; os._exit(0)"],  # exits as the CLI does
            only_temporal=False,
        ),
        Command(
            "SDK floor: connect + 1 RPC (reference)", [*python, SDK_FLOOR], only_temporal=False
        ),
        Command("deployflow --help", [*cli, "--help"]),
        Command("rollout list", [*cli, "rollout", "list"]),
        Command("rollout status NAME", [*cli, "rollout", "status", service]),
        Command("rollout status NAME --json", [*cli, "rollout", "status", service, "--json"]),
        Command("rollout pause NAME", [*cli, "rollout", "pause", service, "--env", env_name]),
        Command("rollout resume NAME", [*cli, "rollout", "resume", service, "--env", env_name]),
        Command("pipeline status NAME", [*cli, "pipeline", "status", pipeline]),
        Command("incident list", [*cli, "incident", "list"]),
        Command("history SERVICE", [*cli, "history", service]),
        Command("monitor list", [*cli, "monitor", "list"]),
    ]
    if baseline is None:
        return measured
    old = [
        Command(
            f"{c.label} [baseline]", c.argv, only_temporal=False, env={"PYTHONPATH": str(baseline)}
        )
        for c in measured
        if c.argv[0] == str(DEPLOYFLOW)
    ]
    return measured + old


def timed(command: Command, env: dict[str, str]) -> tuple[float, float]:
    """(wall, CPU) seconds of one run of ``command``; a failing command stops the bench."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        command.argv,
        env=env | command.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=30,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(
            f"{command.label}: exit {done.returncode}: {done.stderr.decode().strip()[-500:]}"
        )
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def bench_pipeline(service: str) -> Any:
    """Two stages: ``bench-dev`` rolls out at once, ``bench-prod`` waits for an approval."""

    def stage(environment: str, **gates: Any) -> dict[str, Any]:
        rollout = {"router": DUMMY_ROUTER, "strategy": {"canary": {"steps": [{"setWeight": 100}]}}}
        return {"environment": environment, "rollout": rollout, **gates}

    return parse_pipeline(
        {
            "apiVersion": "deployflow/v1",
            "kind": "Pipeline",
            "metadata": {"name": service},
            "spec": {
                "service": service,
                "stages": [
                    stage("bench-dev"),
                    stage("bench-prod", approval={"approvers": ["alice"], "minApprovals": 1}),
                ],
            },
        },
        source="bench",
    )


async def until(what: str, check: Any) -> None:
    """Poll ``check()`` (a coroutine function) until true, at most READY_TIMEOUT_S."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not await check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"not ready after {READY_TIMEOUT_S:g} s: {what}")
        await asyncio.sleep(0.1)


async def start_subjects(
    client: Client, task_queue: str, stamp: str
) -> list[WorkflowHandle[Any, Any]]:
    """The rollout (held at ``pause: {}``) and the pipeline (held at its gate)."""
    rollout = canary_rollout(f"cli-{stamp}", [{"setWeight": 20}, {"pause": {}}, {"setWeight": 100}])
    held = await client.start_workflow(
        CanaryRollout.run, rollout, id=rollout.workflow_id, task_queue=task_queue
    )
    pipeline = bench_pipeline(f"bench-pipe-{stamp}")
    gated = await client.start_workflow(
        PromotionPipeline.run,
        PipelineRequest(pipeline=pipeline, version="v2"),
        id=pipeline.workflow_id,
        task_queue=task_queue,
    )

    async def paused() -> bool:
        status = await held.query(CanaryRollout.status)
        return status.phase is RolloutPhase.PAUSED

    async def at_gate() -> bool:
        status = await gated.query(PromotionPipeline.status)
        return status.stages[1].state == "awaiting-approval"

    await until("rollout paused at pause: {}", paused)
    await until("pipeline at its approval gate", at_gate)
    return [held, gated]


def report(measured: list[Command], target_s: float) -> None:
    n = len(measured[0].wall_s)
    print(f"\n{'command':<40} {'median':>7} {'p95':>7} {'min':>7} {'CPU':>7}  (seconds, n={n})")
    missed: list[str] = []
    for command in measured:
        median = statistics.median(command.wall_s)
        verdict = ""
        if command.only_temporal:
            verdict = "met" if median <= target_s else "MISSED"
            if median > target_s:
                missed.append(command.label)
        print(
            f"{command.label:<40} {median:>7.3f} {percentile(command.wall_s, 95):>7.3f} "
            f"{min(command.wall_s):>7.3f} {statistics.median(command.cpu_s):>7.3f}  {verdict}"
        )
    judged = [c for c in measured if c.only_temporal]
    floor = statistics.median(next(c for c in measured if c.label.startswith("SDK floor")).wall_s)
    talking = [c for c in judged if c.argv[1:] != ["--help"]]
    over = max(statistics.median(c.wall_s) for c in talking) - floor
    print(f"slowest command that talks to Temporal: {over * 1000:+.0f} ms over the SDK floor")
    verdict = "met" if not missed else "MISSED"
    print(
        f"target: commands that only talk to Temporal ≤ {target_s:g} s (median): {verdict} "
        f"for {len(judged) - len(missed)}/{len(judged)}"
        + (f"; missed: {', '.join(missed)}" if missed else "")
    )


async def main_async(args: argparse.Namespace) -> int:
    print(f"machine: {machine()}")
    if not DEPLOYFLOW.is_file():
        print(f"bench: no deployflow console script at {DEPLOYFLOW}; run `make bootstrap`")
        return 2
    client, dev_server = await connect_or_start(args.address)
    address = args.address or client.service_client.config.target_host
    task_queue = f"bench-cli-{uuid.uuid4().hex[:8]}"
    stamp = run_stamp()
    env = os.environ | {"TEMPORAL_ADDRESS": address, "DEPLOYFLOW_TASK_QUEUE": task_queue}
    subjects: list[WorkflowHandle[Any, Any]] = []
    try:
        async with Worker(
            client,
            task_queue=task_queue,
            workflows=[PromotionPipeline, *BY_STRATEGY.values()],
            activities=STUB_ROUTER,
        ):
            subjects = await start_subjects(client, task_queue, stamp)
            measured = commands("bench", f"cli-{stamp}", f"bench-pipe-{stamp}", args.baseline)
            print(
                f"{len(measured)} commands, ({args.warmup} warm-up + {args.runs}) runs each "
                f"against {address} ...",
                flush=True,
            )
            for run in range(args.warmup + args.runs):
                for command in measured:
                    # A subprocess blocks: in a thread, so the worker keeps answering.
                    wall, cpu = await asyncio.to_thread(timed, command, env)
                    if run >= args.warmup:
                        command.wall_s.append(wall)
                        command.cpu_s.append(cpu)
    finally:
        for handle in subjects:
            await handle.terminate(reason="bench done")
        if dev_server is not None:
            await dev_server.shutdown()
    report(measured, args.target_s)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0] if __doc__ else None,
        epilog="Prints numbers; the exit code does not depend on the target.",
    )
    parser.add_argument("--runs", type=int, default=20, help="measured runs per command")
    parser.add_argument("--warmup", type=int, default=2, help="runs first, not counted")
    parser.add_argument("--address", help="use this running server instead of a fresh one")
    parser.add_argument("--target-s", type=float, default=0.3, help="DESIGN §6 target")
    parser.add_argument(
        "--baseline", type=Path, metavar="DIR", help="also run the commands from this tree"
    )
    args = parser.parse_args(argv)
    if not 1 <= args.runs <= 500 or not 0 <= args.warmup <= 20:
        parser.error("need 1 <= --runs <= 500 and 0 <= --warmup <= 20")
    if args.baseline is not None and not (args.baseline / "starters" / "cli.py").is_file():
        parser.error(f"--baseline {args.baseline}: no starters/cli.py there")
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    exit_now(main())
