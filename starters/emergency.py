"""`deployflow rollback SERVICE --env ENV [--to VERSION]`: the emergency rollback.

Finds what to go back to — ``--to``, or the last known good version from history (the live
version if a rollout is running, else the version promoted before the live one) — and the
service's spec (from the running or latest rollout's input), then starts an
EmergencyRollback, or attaches to the one already running. Exit 0 when the target is live.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.service import RPCError, RPCStatusCode

from starters.errors import EXIT_FAILED, EXIT_OK, UsageError
from starters.progress import print_events
from workers.config import TemporalConfig
from workflows.emergency import EmergencyRollback
from workflows.emergency_models import RollbackRequest, RollbackResult
from workflows.registry import WORKFLOW_TYPES
from workflows.rollout_models import RolloutPhase, RolloutResult
from workflows.spec import Rollout, rollout_workflow_id


async def rollback(args: argparse.Namespace, config: TemporalConfig, client: Client) -> int:
    running_id = rollout_workflow_id(args.service, args.env)
    running = await _running(client, running_id)
    finished = await _promoted_versions(client, args.service, args.env)
    target = args.to or _last_good(finished, running)
    revision = next((r for v, _, _, r in finished if v == target), None)
    spec = await _spec(client, running_id if running else None, finished)
    body = spec.model_dump(by_alias=True)
    body["spec"]["version"] = target
    request = RollbackRequest(
        rollout=Rollout.model_validate(body),
        cancel_workflow_id=running_id if running else None,
        database_revision=revision,
        reason=args.reason or "emergency rollback",
        by=os.environ.get("DEPLOYFLOW_USER") or None,
    )
    print(
        f"rolling {args.service} in {args.env} back to {target}"
        + (f" (cancelling {running_id})" if running else ""),
        file=sys.stderr,
    )
    handle = await client.start_workflow(
        EmergencyRollback.run,
        request,
        id=f"rollback-{args.service}-{args.env}",
        task_queue=config.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        static_summary=f"emergency rollback of {args.service} in {args.env} to {target}",
    )
    print(f"{handle.id} — {config.workflow_url(handle.id)}", file=sys.stderr)
    try:
        result: RollbackResult = await handle.result()
    except WorkflowFailureError as exc:
        print(f"{handle.id}: failed — {getattr(exc.cause, 'message', exc.cause)}")
        return EXIT_FAILED
    print_events(result.events, out=sys.stderr)
    if args.json:
        print(result.model_dump_json(by_alias=True))
    else:
        print(f"{handle.id}: {result.version} — {result.reason}")
    return EXIT_OK


async def _running(client: Client, workflow_id: str) -> bool:
    try:
        description = await client.get_workflow_handle(workflow_id).describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return description.status == WorkflowExecutionStatus.RUNNING


Promoted = list[tuple[str, str, str, str | None]]
"""(version, workflow id, run id, database revision) of promoted rollouts, newest first."""


async def _promoted_versions(client: Client, service: str, env: str) -> Promoted:
    """The service's promoted rollouts in ``env``, newest first."""
    query = (
        f"WorkflowType IN ({', '.join(repr(t) for t in WORKFLOW_TYPES)}) "
        f"AND DeployService = {json.dumps(service)} AND DeployEnvironment = {json.dumps(env)} "
        f"AND DeployPhase = '{RolloutPhase.PROMOTED.value}' AND ExecutionStatus = 'Completed'"
    )
    found = []
    async for wf in client.list_workflows(query, limit=20):
        handle = client.get_workflow_handle(wf.id, run_id=wf.run_id, result_type=RolloutResult)
        result = await handle.result(follow_runs=False)
        revision = result.database.now if result.database else None
        found.append((result.version, wf.id, wf.run_id, revision))
    return found


def _last_good(promoted: Promoted, running: bool) -> str:
    """Live version under a running rollout; else the one promoted before the live one."""
    wanted = 0 if running else 1
    distinct: list[str] = []
    for version, *_ in promoted:
        if version not in distinct:
            distinct.append(version)
    if len(distinct) <= wanted:
        raise UsageError("--to: no known good version in history; name one with --to VERSION")
    return distinct[wanted]


async def _spec(client: Client, running_id: str | None, promoted: Promoted) -> Rollout:
    """The service's spec: the running rollout's input, else the latest promoted one's."""
    if running_id is not None:
        handle = client.get_workflow_handle(running_id)
    elif promoted:
        handle = client.get_workflow_handle(promoted[0][1], run_id=promoted[0][2])
    else:
        raise UsageError("SERVICE: no rollout of it in history to take its spec from")
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            payloads = event.workflow_execution_started_event_attributes.input.payloads
            [rollout] = await client.data_converter.decode(payloads, [Rollout])
            assert isinstance(rollout, Rollout)
            return rollout
    raise UsageError(f"SERVICE: {handle.id} has no start event")


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "rollback", help="emergency rollback of a service to its last known good version"
    )
    p.add_argument("service", metavar="SERVICE")
    p.add_argument("--env", required=True, help="the environment")
    p.add_argument("--to", metavar="VERSION", help="go back to this version")
    p.add_argument("--reason", help="recorded in history")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=rollback)
