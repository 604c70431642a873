"""`deployflow rollout simulate FILE --metrics SCENARIO.yaml`: the user's own spec, in the
real workflow, under Temporal time skipping — routers, platforms and metrics replaced by
stand-ins (``stand_ins.py``) that follow the scenario (``scenario.py``).

A private dev server with time skipping is started for the rehearsal and stopped after it:
timers fire as soon as nothing else is pending, so a 2-hour canary with 30-minute soaks
takes seconds. When the rollout waits for a human (a pause without duration, an
inconclusive analysis) the simulated operator does what ``whenPaused`` says.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import TimeSkippingConfig, WorkflowEnvironment
from temporalio.worker import Worker

from starters import spec_files
from starters.devserver import find_temporal_binary
from starters.errors import EXIT_FAILED, EXIT_OK
from starters.simulation.scenario import Scenario, load_scenario
from starters.simulation.stand_ins import StandIns
from starters.simulation.timeline import Rehearsal, print_timeline, rehearsal_json
from workers.usage import read_text
from workflows.analysis.plan import PlannedMetric, plan
from workflows.core.search_attributes import ALL
from workflows.core.verbs import OperatorInput
from workflows.rollouts.models import RolloutPhase, RolloutResult, RolloutStatus
from workflows.rollouts.registry import BY_STRATEGY, workflow_type
from workflows.rollouts.spec import Rollout, analysis_references, load_rollout

WALL_CLOCK_LIMIT = 300.0
"""Seconds of real time a rehearsal may take before it is given up (a bug, or a spec that
waits for something no scenario provides)."""
MAX_SKIPS = 100_000
"""Timer skips allowed in one rehearsal (each timer that fires is one)."""
IDLE_POLLS = 2
"""Status polls (0.1 s apart) a rollout must be waiting for a human, unchanged, before the
simulated operator acts (so it does not act on a status that is already out of date)."""


def run(args: argparse.Namespace) -> int:
    rollout = spec_files.read(args.file, load_rollout)
    metrics = planned_metrics(rollout)
    text = read_text(Path(args.metrics), f"--metrics {args.metrics}")
    scenario = load_scenario(text, args.metrics, set(metrics))
    started = time.monotonic()
    rehearsal = asyncio.run(simulate(rollout, scenario, metrics))
    rehearsal.wall_seconds = time.monotonic() - started
    if args.json:
        print(json.dumps(rehearsal_json(rehearsal)))
    else:
        print_timeline(rehearsal, args.file, args.metrics, out=sys.stdout)
    return EXIT_OK if rehearsal.result.outcome is RolloutPhase.PROMOTED else EXIT_FAILED


def planned_metrics(rollout: Rollout) -> dict[str, PlannedMetric]:
    """Every analysis metric the spec refers to, by name (the first of a name wins)."""
    found: dict[str, PlannedMetric] = {}
    for path, analysis, _ in analysis_references(rollout):
        names = [t.template_name for t in analysis.templates]
        for planned in plan(rollout, names, analysis.args, analysis.dry_run, path=path):
            found.setdefault(planned.metric.name, planned)
    return found


async def simulate(
    rollout: Rollout, scenario: Scenario, metrics: dict[str, PlannedMetric]
) -> Rehearsal:
    """Run ``rollout`` to its end in a private time-skipping server; what happened."""
    with _stdout_to_stderr():  # the dev server's banner must not mix with --json
        env = await WorkflowEnvironment.start_time_skipping_v2(
            # The server's default stops skipping after 100 skips: a long canary has more.
            ts_config=TimeSkippingConfig(max_session_skip_count=MAX_SKIPS),
            dev_server_existing_path=find_temporal_binary(),
            dev_server_extra_args=[
                *("--dynamic-config-value", "frontend.WorkflowTimeSkippingEnabled=true"),
                # The timer queue looks ahead 1 s by default, so each skip took a second;
                # at 10 ms one takes about 0.15 s (measured on 2 cores).
                *("--dynamic-config-value", 'history.timerProcessorMaxTimeShift="10ms"'),
                *("--log-level", "error"),
            ],
            search_attributes=list(ALL),
            data_converter=pydantic_data_converter,
            # The SDK's default 5 s is too short on a busy 2-core machine.
            dev_server_startup_timeout=timedelta(seconds=30),
        )
    async with env:
        stand_ins = StandIns(rollout, scenario, metrics)
        task_queue = f"rehearsal-{uuid.uuid4().hex[:8]}"
        async with Worker(
            env.client,
            task_queue=task_queue,
            workflows=list(BY_STRATEGY.values()),
            activities=stand_ins.activities(),
        ):
            handle = await _start(env.client, rollout, task_queue)
            stand_ins.started = (await handle.describe()).start_time
            operator = asyncio.create_task(_operate(handle, scenario))
            try:
                async with asyncio.timeout(WALL_CLOCK_LIMIT):
                    result = await handle.result()
            finally:
                operator.cancel()
    return Rehearsal(result=result, calls=stand_ins.calls)


async def _start(
    client: Client, rollout: Rollout, task_queue: str
) -> WorkflowHandle[object, RolloutResult]:
    handle: WorkflowHandle[object, RolloutResult] = await client.start_workflow(
        workflow_type(rollout),
        rollout,
        id=rollout.workflow_id,
        task_queue=task_queue,
        result_type=RolloutResult,
        static_summary=f"rehearsal of {rollout.spec.service} {rollout.spec.version}",
    )
    return handle


async def _operate(handle: WorkflowHandle[object, RolloutResult], scenario: Scenario) -> None:
    """Act as the scenario's operator whenever the rollout waits for one."""
    idle, seen = 0, -1
    while True:
        await asyncio.sleep(0.1)
        try:
            status = await handle.query("status", result_type=RolloutStatus)
        except Exception:  # not answering yet (just started, continuing as new)
            continue
        if not waits_for_a_human(status) or len(status.events) != seen:
            idle, seen = 0, len(status.events)
            continue
        idle += 1
        if idle < IDLE_POLLS:
            continue
        verb = scenario.when_paused
        request = OperatorInput(by="simulated operator", reason="scenario: whenPaused")
        try:
            await handle.execute_update(verb, request, result_type=str)
        except WorkflowUpdateFailedError:
            continue  # the rollout moved on meanwhile; its timeline records what was done
        idle = 0


def waits_for_a_human(status: RolloutStatus) -> bool:
    """Held (an inconclusive analysis, an operator's pause) or in a pause step without a
    duration: only a verb moves it on. (A timed pause ends by itself, time skipped.)"""
    if status.phase is not RolloutPhase.PAUSED:
        return False
    return status.paused_reason is not None or "waiting until promoted" in status.message


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """File descriptor 1 is 2 meanwhile: child processes started now inherit that."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
