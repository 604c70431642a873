"""Showing a rollout to a person: streamed progress for ``--wait`` and ``status`` output."""

from __future__ import annotations

import asyncio
from typing import Any, TextIO

from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError

from workflows.rollout_models import Event, RolloutResult, RolloutStatus

POLL_SECONDS = 0.5


async def follow(handle: WorkflowHandle[Any, Any], *, out: TextIO) -> int:
    """Print new timeline events and measurements until the workflow closes; the number
    of events printed (the caller prints the rest from the result)."""
    seen_events = 0
    seen_measurements: dict[tuple[str, str], int] = {}
    while True:
        description = await handle.describe()
        if description.status != WorkflowExecutionStatus.RUNNING:
            return seen_events
        try:
            status = await handle.query("status", result_type=RolloutStatus)
        except RPCError:
            # No worker has picked the run up yet, or it is between tasks: try again.
            await asyncio.sleep(POLL_SECONDS)
            continue
        print_events(status.events[seen_events:], out=out)
        seen_events = len(status.events)
        for run in status.analysis_runs:
            for metric in run.metrics:
                key = (run.name, metric.name)
                new = metric.count - seen_measurements.get(key, 0)
                shown = metric.measurements[-new:] if new > 0 else []
                for number, m in enumerate(shown, start=metric.count - len(shown) + 1):
                    value = ", ".join(f"{v:.4g}" for v in m.value) or "-"
                    print(
                        f"{m.finished_at:%H:%M:%S} {'measure':<12} {run.name}/{metric.name} "
                        f"#{number} = {value} {m.phase.value}"
                        + (f" ({m.message})" if m.message else ""),
                        file=out,
                        flush=True,
                    )
                seen_measurements[key] = metric.count
        await asyncio.sleep(POLL_SECONDS)


def print_events(events: list[Event], *, out: TextIO) -> None:
    for event in events:
        print(f"{event.at:%H:%M:%S} {event.kind:<12} {event.message}", file=out, flush=True)


def print_status(
    workflow_id: str, current: RolloutStatus | RolloutResult, url: str, *, out: TextIO
) -> None:
    if isinstance(current, RolloutResult):
        print(f"{workflow_id}: {current.outcome.value} — {current.reason}", file=out)
    else:
        step = "-" if current.current_step is None else f"{current.current_step}: {current.step}"
        print(f"{workflow_id}: {current.phase.value} — {current.message}", file=out)
        print(f"  step      {step} (of {current.step_count})", file=out)
    print(f"  version   {current.version}", file=out)
    if current.weights is not None:
        weights = current.weights
        print(f"  weights   stable {weights.stable} % / canary {weights.canary} %", file=out)
    for pool in current.pools:
        version = f" ({pool.version})" if pool.version else ""
        print(
            f"  pool      {pool.name}: {pool.role}{version} — {', '.join(pool.servers)}", file=out
        )
    for batch in current.batches:
        print(f"  batch {batch.index + 1:<3} {batch.state:<10} {', '.join(batch.hosts)}", file=out)
    for run in current.analysis_runs:
        print(f"  analysis  {run.name}: {run.phase.value}", file=out)
        for metric in run.metrics:
            print(
                f"            {metric.name}: {metric.phase.value} ({metric.count} measured, "
                f"{metric.successful} ok, {metric.failed} failed, {metric.inconclusive} "
                f"inconclusive, {metric.error} errors)",
                file=out,
            )
    print(f"  ui        {url}", file=out)
    for event in current.events[-10:]:
        print(f"  {event.at:%Y-%m-%d %H:%M:%S} {event.kind:<12} {event.message}", file=out)
