"""`deployflow rollout status|list|promote|pause|resume|abort`: the running rollouts.

These only talk to Temporal, so they read and send plain JSON (``starters/plain_json.py``)
and import no spec or model module. Exit codes: 0 done, 1 the rollout failed (or its
status cannot be read), 2 invalid input (a NAME that matches nothing, a verb that does not
apply now), 3 Temporal unreachable. `lint` and `start` are in ``starters/rollout_start.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import timedelta
from typing import Any, TextIO

from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.service import RPCError, RPCStatusCode

from activities.errors import root_cause
from starters.errors import EXIT_FAILED, EXIT_OK, Conflict, NotFound, UsageError, print_failed
from starters.listing import print_rows
from starters.operator import who
from starters.plain_json import dumps, moment
from workers.config import TemporalConfig
from workflows.core import search_attributes as sa
from workflows.core.names import ROLLOUT_WORKFLOW_TYPES, rollout_workflow_id


async def status(args: argparse.Namespace, config: TemporalConfig, client: Client) -> int:
    handle = client.get_workflow_handle(
        await resolve(client, args.name, args.env, running_only=False)
    )
    description = await handle.describe()
    current: dict[str, Any]
    if description.status == WorkflowExecutionStatus.RUNNING:
        try:
            current = await handle.query("status")  # a RolloutStatus
        except RPCError as exc:
            # E.g. no worker is running, or its workflow task is failing: say so, plainly.
            print(f"{handle.id}: running, but its status cannot be read now: {exc.message}")
            return EXIT_FAILED
    else:
        try:
            current = await handle.result()  # a RolloutResult
        except WorkflowFailureError as exc:
            return print_failed(handle.id, exc, json_output=args.json)
    if args.json:
        print(dumps(current))
    else:
        print_status(handle.id, current, config.workflow_url(handle.id), out=sys.stdout)
    return EXIT_OK


def print_status(workflow_id: str, current: dict[str, Any], url: str, *, out: TextIO) -> None:
    """``current`` is a RolloutStatus (running) or a RolloutResult (closed), as JSON."""
    if "outcome" in current:
        print(f"{workflow_id}: {current['outcome']} — {current['reason']}", file=out)
    else:
        number = current["currentStep"]
        step = "-" if number is None else f"{number}: {current['step']}"
        print(f"{workflow_id}: {current['phase']} — {current['message']}", file=out)
        print(f"  step      {step} (of {current['stepCount']})", file=out)
    print(f"  version   {current['version']}", file=out)
    if (weights := current["weights"]) is not None:
        print(f"  weights   stable {weights['stable']} % / canary {weights['canary']} %", file=out)
    for pool in current["pools"]:
        version = f" ({pool['version']})" if pool["version"] else ""
        print(
            f"  pool      {pool['name']}: {pool['role']}{version} — {', '.join(pool['servers'])}",
            file=out,
        )
    for batch in current["batches"]:
        print(
            f"  batch {batch['index'] + 1:<3} {batch['state']:<10} {', '.join(batch['hosts'])}",
            file=out,
        )
    for run in current["analysisRuns"]:
        print(f"  analysis  {run['name']}: {run['phase']}", file=out)
        for metric in run["metrics"]:
            print(
                f"            {metric['name']}: {metric['phase']} ({metric['count']} measured, "
                f"{metric['successful']} ok, {metric['failed']} failed, "
                f"{metric['inconclusive']} inconclusive, {metric['error']} errors)",
                file=out,
            )
    print(f"  ui        {url}", file=out)
    for event in current["events"][-10:]:
        at = moment(event["at"])
        print(f"  {at:%Y-%m-%d %H:%M:%S} {event['kind']:<12} {event['message']}", file=out)


async def list_rollouts(args: argparse.Namespace, config: TemporalConfig, client: Client) -> int:
    query = f"WorkflowType IN ({', '.join(repr(t) for t in ROLLOUT_WORKFLOW_TYPES)})"
    if not args.all:
        query += " AND ExecutionStatus = 'Running'"
    rows = await visibility_rows(client, query, args.limit)
    return print_rows(
        rows,
        json_output=args.json,
        empty="no rollouts" + ("" if args.all else " running (--all shows finished ones)"),
        line=lambda row: (
            f"{row['workflowId']:<40} {row['phase'] or '-':<12} {row['status']:<11} "
            f"{row['started']}"
        ),
    )


async def visibility_rows(client: Client, query: str, limit: int) -> list[dict[str, Any]]:
    """One row per workflow matching ``query``, from visibility and our search attributes."""
    rows = []
    async for wf in client.list_workflows(query, limit=limit):
        attrs = wf.typed_search_attributes
        rows.append(
            {
                "workflowId": wf.id,
                "service": attrs.get(sa.DEPLOY_SERVICE),
                "environment": attrs.get(sa.DEPLOY_ENVIRONMENT),
                "phase": attrs.get(sa.DEPLOY_PHASE),
                "status": wf.status.name if wf.status else None,
                "started": wf.start_time.isoformat(),
            }
        )
    return rows


async def verb(args: argparse.Namespace, config: TemporalConfig, client: Client) -> int:
    name = "promote_full" if args.verb == "promote" and args.full else args.verb
    handle = client.get_workflow_handle(await resolve(client, args.name, args.env))
    request = {"reason": getattr(args, "reason", None), "by": who()}  # an OperatorInput
    message = await send_verb(handle, name, request)
    print(f"{handle.id}: {message}")
    return EXIT_OK


CLOSING = "update was aborted by closing workflow"
"""The server's NotFound for an update that reached a run as it closed."""


async def send_verb(
    handle: WorkflowHandle[Any, Any],
    name: str,
    request: Any,
    timeout: timedelta | None = None,
) -> str:
    """Run the ``name`` update; the workflow's answer. ``Conflict`` (with the workflow's
    reason) when its validator refuses it or the run closes as it arrives (an abort just
    finishing, say), ``NotFound`` when the run had closed. ``timeout``
    bounds the whole wait for a worker (the API's; the CLI waits as long as the server does):
    the SDK repeats the update call while the server has not accepted it, so ``rpc_timeout``
    alone bounds each round, not the wait."""
    seconds = None if timeout is None else timeout.total_seconds()
    try:
        async with asyncio.timeout(seconds):
            message: str = await handle.execute_update(
                name, request, result_type=str, rpc_timeout=timeout
            )
    except TimeoutError:
        raise WorkflowUpdateRPCTimeoutOrCancelledError() from None
    except WorkflowUpdateFailedError as exc:
        raise Conflict(f"{name} rejected: {root_cause(exc).message}") from None
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
        if CLOSING in exc.message:  # admitted, then the run closed before it ran the verb
            raise Conflict(f"{name} rejected: {handle.id} closed as it arrived") from None
        raise NotFound(f"{handle.id}: not running ({exc.message})") from None
    return message


async def resolve(client: Client, name: str, env: str | None, *, running_only: bool = True) -> str:
    """The workflow id for ``NAME`` (a service, or a workflow id) and ``--env``: the one
    running rollout of that service, or (``running_only=False``) its latest rollout."""
    if env is not None:
        return rollout_workflow_id(name, env)
    if name.startswith("rollout-"):
        return name
    types = ", ".join(repr(t) for t in ROLLOUT_WORKFLOW_TYPES)
    query = f"WorkflowType IN ({types}) AND DeployService = {json.dumps(name)}"
    running = [
        wf.id
        async for wf in client.list_workflows(f"{query} AND ExecutionStatus = 'Running'", limit=10)
    ]
    if len(running) == 1:
        return running[0]
    if len(running) > 1:
        raise UsageError(f"NAME {name}: rollouts running in several environments; pass --env ENV")
    if not running_only:
        async for wf in client.list_workflows(query, limit=1):
            return wf.id
        raise NotFound(f"NAME {name}: no rollout of that service found")
    raise NotFound(f"NAME {name}: no running rollout of that service")
