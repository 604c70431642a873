"""A rollout's history as bench/chaos.py reads it, and the checks made on it.

``History`` follows a run live (a long poll that resumes after a dev server restart), so
faults can be timed on its events: the n-th workflow task, a pause timer starting, a weight
change completing. The functions below it read a finished history: the outcome, the new
version's share at every weight change, forward shifts after an accepted ``abort``, and
when a replacement worker first made progress.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from temporalio.api.common.v1 import Payloads
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from activities.platforms.models import PlatformActionInput
from activities.routing.base import Weights
from activities.routing.models import SetWeightInput
from workflows.rollouts.models import RolloutResult

T = TypeVar("T")
E = EventType

CLOSED = {
    E.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED: "Completed",
    E.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED: "Failed",
    E.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED: "Terminated",
    E.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT: "TimedOut",
    E.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED: "Cancelled",
    E.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW: "ContinuedAsNew",
}
PROGRESS = (E.EVENT_TYPE_WORKFLOW_TASK_COMPLETED, E.EVENT_TYPE_ACTIVITY_TASK_COMPLETED)


def at(event: HistoryEvent) -> float:
    """The event's server time, as ``time.time()`` (the server runs on this machine)."""
    return float(event.event_time.ToNanoseconds()) / 1e9


def decode(payloads: Payloads, kind: type[T]) -> T:
    """A payload as the pydantic converter reads it (the bench's workers run without a
    payload codec: chaos_parts.Worker)."""
    value: T = pydantic_data_converter.payload_converter.from_payloads(payloads.payloads, [kind])[0]
    return value


class History:
    """The events of one run as they happen; ``wait`` blocks until a predicate holds."""

    def __init__(self, client: Client, workflow_id: str, run_id: str | None) -> None:
        self.handle = client.get_workflow_handle(workflow_id, run_id=run_id)
        self.events: list[HistoryEvent] = []
        self.closed = asyncio.Event()
        self._changed = asyncio.Condition()
        self._task = asyncio.create_task(self._follow())

    async def _follow(self) -> None:
        while True:
            try:
                async for event in self.handle.fetch_history_events(wait_new_event=True):
                    if event.event_id <= len(self.events):
                        continue  # seen before a reconnect
                    self.events.append(event)
                    async with self._changed:
                        self._changed.notify_all()
                    if event.event_type in CLOSED:
                        self.closed.set()
                        async with self._changed:
                            self._changed.notify_all()
                        return
            except asyncio.CancelledError:
                raise
            except Exception:  # the server restarting, a long poll cut: read on from here
                await asyncio.sleep(0.5)

    async def wait(
        self, check: Callable[[list[HistoryEvent]], T | None], timeout: float
    ) -> T | None:
        """The first truthy ``check(events)``; None when the run closes first or on timeout."""
        deadline = time.monotonic() + timeout
        async with self._changed:
            while True:
                found = check(self.events)
                if found or self.closed.is_set():
                    return found or None
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), timeout=min(left, 1.0))

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


# -- reading a history -------------------------------------------------------------------


def of_type(events: Iterable[HistoryEvent], kind: int) -> list[HistoryEvent]:
    return [e for e in events if e.event_type == kind]


def workflow_tasks(events: list[HistoryEvent]) -> int:
    return len(of_type(events, E.EVENT_TYPE_WORKFLOW_TASK_COMPLETED))


def scheduled(events: list[HistoryEvent], name: str) -> list[HistoryEvent]:
    return [
        e
        for e in of_type(events, E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)
        if e.activity_task_scheduled_event_attributes.activity_type.name == name
    ]


def completed(events: list[HistoryEvent], name: str) -> list[tuple[HistoryEvent, HistoryEvent]]:
    """``(scheduled, completed)`` pairs of activity ``name``, in completion order."""
    by_id = {e.event_id: e for e in scheduled(events, name)}
    pairs = []
    for done in of_type(events, E.EVENT_TYPE_ACTIVITY_TASK_COMPLETED):
        first = by_id.get(done.activity_task_completed_event_attributes.scheduled_event_id)
        if first is not None:
            pairs.append((first, done))
    return pairs


ROUTER_CHANGES = ("set_weight", "set_server_states")


def router_calls_after(events: list[HistoryEvent], after: float) -> bool:
    """A router change was scheduled after ``after``."""
    return any(at(e) > after for name in ROUTER_CHANGES for e in scheduled(events, name))


def router_failures(events: list[HistoryEvent]) -> int:
    """Router changes that failed for good (a non-retryable error, or out of attempts)."""
    ids = {e.event_id for name in ROUTER_CHANGES for e in scheduled(events, name)}
    return sum(
        e.activity_task_failed_event_attributes.scheduled_event_id in ids
        for e in of_type(events, E.EVENT_TYPE_ACTIVITY_TASK_FAILED)
    )


def share(weights: Weights, new_side: str) -> int:
    return weights.canary if new_side == "canary" else weights.stable


def shares_applied(events: list[HistoryEvent], new_side: str) -> list[int]:
    """The new version's share after every completed ``set_weight``, in order."""
    return [
        share(decode(done.activity_task_completed_event_attributes.result, Weights), new_side)
        for _, done in completed(events, "set_weight")
    ]


def outcome(events: list[HistoryEvent]) -> tuple[str, str]:
    """``(Promoted|RolledBack|Aborted|Failed|Terminated|..., reason)``; ``("Running", "")``
    while open."""
    last = events[-1] if events else None
    if last is None or last.event_type not in CLOSED:
        return "Running", ""
    if last.event_type == E.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
        attrs = last.workflow_execution_completed_event_attributes
        result = decode(attrs.result, RolloutResult)
        return result.outcome.value, result.reason
    if last.event_type == E.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED:
        failure = last.workflow_execution_failed_event_attributes.failure
        chain = [failure.message]
        while failure.HasField("cause"):
            failure = failure.cause
            chain.append(failure.message or failure.WhichOneof("failure_info") or "")
        return "Failed", " ← ".join(m.strip().replace("\n", " / ") for m in chain if m)
    if last.event_type == E.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED:
        return "Terminated", last.workflow_execution_terminated_event_attributes.reason
    return CLOSED[last.event_type], ""


def abort_accepted(events: list[HistoryEvent]) -> HistoryEvent | None:
    for event in of_type(events, E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED):
        request = event.workflow_execution_update_accepted_event_attributes.accepted_request
        if request.input.name == "abort":
            return event
    return None


def abort_task(events: list[HistoryEvent], accepted: HistoryEvent) -> int:
    """Event id of the WorkflowTaskCompleted that accepted the abort: commands carrying an id
    at least this large were decided in or after the activation that saw the abort."""
    attrs = accepted.workflow_execution_update_accepted_event_attributes
    for event in of_type(events, E.EVENT_TYPE_WORKFLOW_TASK_COMPLETED):
        done = event.workflow_task_completed_event_attributes
        if done.scheduled_event_id == attrs.accepted_request_sequencing_event_id:
            return event.event_id
    before = [e.event_id for e in of_type(events, E.EVENT_TYPE_WORKFLOW_TASK_COMPLETED)]
    return max((i for i in before if i < accepted.event_id), default=accepted.event_id)


def forward_after_abort(events: list[HistoryEvent], new_side: str, version: str) -> list[str]:
    """Forward moves decided in or after the activation that accepted ``abort`` and carried
    out (their activity completed): a set_weight giving the new version more than it had,
    or a deploy of the new version. Each is a double shift."""
    accepted = abort_accepted(events)
    if accepted is None:
        return []
    since = abort_task(events, accepted)
    held = 0
    for _, done in completed(events, "set_weight"):
        if done.event_id < accepted.event_id:
            held = share(
                decode(done.activity_task_completed_event_attributes.result, Weights), new_side
            )
    found = []
    for first, _ in completed(events, "set_weight"):
        attrs = first.activity_task_scheduled_event_attributes
        wanted = share(decode(attrs.input, SetWeightInput).weights, new_side)
        if attrs.workflow_task_completed_event_id >= since and wanted > held:
            found.append(f"set_weight to {wanted} % (held {held} %) after the abort")
    for first, _ in completed(events, "platform_action"):
        attrs = first.activity_task_scheduled_event_attributes
        action = decode(attrs.input, PlatformActionInput)
        if (
            attrs.workflow_task_completed_event_id >= since
            and action.action == "deploy"
            and action.version == version
        ):
            found.append(f"deploy {version} on {action.target} after the abort")
    return found


def with_timer(events: list[HistoryEvent], timer: HistoryEvent) -> bool:
    """Whether the activation that accepted the abort also saw ``timer`` fire (no workflow
    task completed between the TimerFired and that activation)."""
    accepted = abort_accepted(events)
    if accepted is None:
        return False
    since = abort_task(events, accepted)
    fired = [
        e.event_id
        for e in of_type(events, E.EVENT_TYPE_TIMER_FIRED)
        if e.timer_fired_event_attributes.started_event_id == timer.event_id
    ]
    tasks = [e.event_id for e in of_type(events, E.EVENT_TYPE_WORKFLOW_TASK_COMPLETED)]
    return bool(fired) and fired[0] < since and not any(fired[0] < t < since for t in tasks)


def progress_by(events: list[HistoryEvent], pid: int, after: float) -> float | None:
    """Time of the first workflow or activity task completed by the worker with ``pid``
    (identity ``PID@host``, the SDK's default) after ``after``."""
    prefix = f"{pid}@"
    for event in events:
        if event.event_type not in PROGRESS or at(event) <= after:
            continue
        attrs: Any = (
            event.workflow_task_completed_event_attributes
            if event.event_type == E.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
            else event.activity_task_completed_event_attributes
        )
        if attrs.identity.startswith(prefix):
            return at(event)
    return None


def pause_timers(events: list[HistoryEvent], seconds: float) -> list[HistoryEvent]:
    """TimerStarted events of exactly ``seconds`` (the bench gives pauses a length no other
    timer has)."""
    return [
        e
        for e in of_type(events, E.EVENT_TYPE_TIMER_STARTED)
        if abs(e.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta().total_seconds()
               - seconds) < 1e-3
    ]  # fmt: skip


# -- checks on samples -----------------------------------------------------------------


def steady(values: list[int]) -> list[int]:
    """Samples seen at least twice in a row (and the last): drops what a sampler catches
    mid-change, e.g. NGINX's file between the router's write and its restore after a
    rejected ``nginx -t``, or HAProxy between two servers' ``set weight``."""
    return [v for i, v in enumerate(values) if i + 1 == len(values) or values[i + 1] == v]


def shape_problem(values: list[int], outcome: str, full: int, *, strict: bool) -> str | None:
    """What is wrong with the new version's share over time, or None. Moving forward it
    never falls; once it falls (a rollback) it only falls, to 0, and stays there; Promoted
    ends at ``full``, RolledBack/Aborted at 0. ``strict`` (weight changes from history,
    where a rollback is one change): the first fall goes straight to 0. Router samples are
    not strict: HAProxy may be read between two servers' ``set weight`` commands."""
    seen = [v for i, v in enumerate(values) if i == 0 or v != values[i - 1]]
    path = " → ".join(map(str, seen))
    falls = [i for i in range(1, len(seen)) if seen[i] < seen[i - 1]]
    if falls:
        first = falls[0]
        if any(seen[i] > seen[i - 1] for i in range(first + 1, len(seen))):
            return f"went backwards while moving forward: {path}"
        if strict and seen[first] != 0:
            return f"went backwards while moving forward: {path}"
    if not seen:
        return None
    if outcome == "Promoted" and seen[-1] != full:
        return f"ended at {seen[-1]} after Promoted: {path}"
    if outcome in ("RolledBack", "Aborted") and seen[-1] != 0:
        return f"ended at {seen[-1]} after {outcome}: {path}"
    return None
