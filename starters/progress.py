"""Showing a run to a person: progress streamed while ``--wait`` waits, then its result."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from typing import Any, Protocol, TextIO, TypeVar

from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError, WorkflowHandle
from temporalio.service import RPCError

from starters.errors import EXIT_FAILED, EXIT_OK, print_failed
from workflows.core.timeline import Event
from workflows.rollouts.models import RolloutStatus

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


class Finished(Protocol):
    """A run's result as the CLI shows it: its timeline, and itself as JSON."""

    events: list[Event]

    def model_dump_json(self, *, by_alias: bool) -> str: ...


R = TypeVar("R", bound=Finished)


async def print_result(
    handle: WorkflowHandle[Any, R],
    line: Callable[[R], str],
    succeeded: Callable[[R], bool],
    *,
    json_output: bool,
    shown: int = 0,
) -> int:
    """Wait for the run's result: the events after the ``shown`` ones on stderr, the result
    on stdout (JSON, or ``line``); exit 0 when it ``succeeded``, else 1 (a run that failed,
    was cancelled or timed out is shown by ``print_failed``)."""
    try:
        result = await handle.result()
    except WorkflowFailureError as exc:
        return print_failed(handle.id, exc, json_output=json_output)
    print_events(result.events[shown:], out=sys.stderr)
    print(result.model_dump_json(by_alias=True) if json_output else line(result))
    return EXIT_OK if succeeded(result) else EXIT_FAILED
