"""What an emergency rollback of a service goes back to, read from Temporal's history: the
last known good version (the live version if a rollout is running, else the version
promoted before the live one), the service's spec (the running or latest rollout's input),
and what the router's two lists run.

Client-side code, not workflow code: ``deployflow rollback`` (``starters/emergency.py``), the
API and the worker's ``plan_rollback`` and ``plan_scope_member`` activities
(``workers/remediation.py``, ``workers/scope_planning.py``) all plan with it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.service import RPCError, RPCStatusCode

from activities.platforms.models import StableRecord
from workflows.rollouts.emergency_models import RollbackRequest, RollbackResult
from workflows.rollouts.models import RolloutPhase, RolloutResult
from workflows.rollouts.registry import WORKFLOW_TYPES
from workflows.rollouts.spec import Rollout, rollout_workflow_id

T = TypeVar("T")


class NoRollbackTarget(ValueError):
    """History cannot say what to go back to (no good version, no spec): the message names
    the argument that would fix it. The CLI exits 2 and the API answers 400 on it."""


@dataclass(frozen=True)
class Deployed:
    """One finished run of the service in an environment, as history tells it."""

    kind: str  # promoted | failed (a rollout that did not promote) | rollback
    version: str | None
    workflow_id: str
    run_id: str
    revision: str | None = None
    flipped: bool = False
    stable: StableRecord | None = None  # on Kubernetes: the Deployment as the run found it


def lists_after(timeline: list[Deployed]) -> tuple[str | None, str | None]:
    """(live, idle): what the router's live and idle list run after ``timeline`` (oldest
    first). A promotion puts its version on the idle list and makes it live; a rollout that
    did not promote still left its version on the idle list; a rollback flip swaps them."""
    live: str | None = None
    idle: str | None = None
    for run in timeline:
        if run.kind == "promoted":
            live, idle = run.version, live
        elif run.kind == "failed":
            idle = run.version
        else:  # a rollback: after it, its target is what the live list serves
            if run.flipped:
                live, idle = idle, live
            live = run.version or live
    return live, idle


def last_good(timeline: list[Deployed], running: bool) -> str | None:
    """The version to go back to: what is live when a rollout is running (its cancel
    restores it); else, newest first, the target of an earlier rollback (an operator
    already called it good — so a second run finds it live and does nothing), a promoted
    version that is not the live one, or (on Kubernetes) the version a run found live."""
    live, _ = lists_after(timeline)
    if running:
        return live
    for run in reversed(timeline):
        if run.kind == "rollback" and run.version:
            return run.version
        if run.kind == "promoted" and run.version and run.version != live:
            return run.version
        if run.stable and run.stable.version and run.stable.version != live:
            return run.stable.version  # on Kubernetes: what was live before this run
    return None


def recorded_template(timeline: list[Deployed], target: str | None) -> StableRecord | None:
    """On Kubernetes: the newest record a rollout made of the stable Deployment while it
    ran ``target`` — its exact pod template, as live (a team's edits between rollouts
    included), which an emergency rollback puts back."""
    return next(
        (r.stable for r in reversed(timeline) if r.stable and r.stable.version == target), None
    )


async def plan(
    client: Client,
    service: str,
    env: str,
    to: str | None = None,
    reason: str | None = None,
    by: str | None = None,
    warn: Callable[[str], None] = lambda message: None,
) -> RollbackRequest:
    """The EmergencyRollback request for ``service`` in ``env``, from history: what to go
    back to, the spec, what the router lists run. ``NoRollbackTarget`` when history knows no
    good version and ``to`` names none."""
    running_id = rollout_workflow_id(service, env)
    running = await is_running(client, running_id)
    timeline = await deployments(client, service, env)
    live, idle = lists_after(timeline)
    target = to or last_good(timeline, running)
    if idle is None and to and to != live and not running:
        # History never saw what the idle list runs (e.g. it was there before the first
        # rollout deployflow knows of): take the operator's word for it.
        warn(f"history does not say what the idle list runs; assuming {to} (--to)")
        idle = to
    if target is None and not running:
        raise NoRollbackTarget(
            "--to: history knows no other good version; name one with --to VERSION"
        )
    revision = next(
        (r.revision for r in reversed(timeline) if r.version == target and r.revision), None
    )
    restore = recorded_template(timeline, target)
    return RollbackRequest(
        rollout=await _spec(client, running_id if running else None, timeline),
        target=target,
        cancel_workflow_id=running_id if running else None,
        live=live,
        idle=idle,
        database_revision=revision,
        restore=restore,
        reason=reason or "emergency rollback",
        by=by,
    )


async def is_running(client: Client, workflow_id: str) -> bool:
    """Whether a run with ``workflow_id`` is running now."""
    try:
        description = await client.get_workflow_handle(workflow_id).describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return description.status == WorkflowExecutionStatus.RUNNING


async def deployments(client: Client, service: str, env: str) -> list[Deployed]:
    """Finished rollouts and rollbacks of the service in ``env``, oldest first."""
    types = ", ".join(repr(t) for t in (*WORKFLOW_TYPES, "EmergencyRollback"))
    query = (
        f"WorkflowType IN ({types}) AND DeployService = {json.dumps(service)} "
        f"AND DeployEnvironment = {json.dumps(env)} AND ExecutionStatus != 'Running'"
    )
    runs: list[Deployed] = []
    async for wf in client.list_workflows(query, limit=50):
        if wf.workflow_type == "EmergencyRollback":
            handle = client.get_workflow_handle(wf.id, run_id=wf.run_id, result_type=RollbackResult)
            try:
                done = await handle.result(follow_runs=False)
            except WorkflowFailureError:
                continue
            runs.append(Deployed("rollback", done.version, wf.id, wf.run_id, flipped=done.flipped))
            continue
        rollout = client.get_workflow_handle(wf.id, run_id=wf.run_id, result_type=RolloutResult)
        try:
            result = await rollout.result(follow_runs=False)
        except WorkflowFailureError:  # cancelled or failed: its version may be on the idle list
            runs.append(Deployed("failed", None, wf.id, wf.run_id))
            continue
        promoted = result.outcome is RolloutPhase.PROMOTED
        revision = result.database.now if result.database else None
        kind = "promoted" if promoted else "failed"
        runs.append(
            Deployed(kind, result.version, wf.id, wf.run_id, revision, stable=result.stable)
        )
    return runs[::-1]


async def _spec(client: Client, running_id: str | None, timeline: list[Deployed]) -> Rollout:
    """The service's spec: the running rollout's input, else the newest rollout's."""
    if running_id is not None:
        return await started_input(client, running_id, Rollout)
    newest = next((r for r in reversed(timeline) if r.kind != "rollback"), None)
    if newest is None:
        raise NoRollbackTarget("SERVICE: no rollout of it in history to take its spec from")
    return await started_input(client, newest.workflow_id, Rollout, newest.run_id)


async def started_input(
    client: Client, workflow_id: str, input_type: type[T], run_id: str | None = None
) -> T:
    """The input a run was started with (its first event's), as ``input_type``."""
    handle = client.get_workflow_handle(workflow_id, run_id=run_id)
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            payloads = event.workflow_execution_started_event_attributes.input.payloads
            [started] = await client.data_converter.decode(payloads, [input_type])
            assert isinstance(started, input_type)
            return started
    raise NoRollbackTarget(f"SERVICE: {handle.id} has no start event")
