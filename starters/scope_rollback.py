"""`deployflow rollback --scope GROUP --env ENV [--canary-only]`: a group of services back.

The members of a scope are found in Temporal visibility: every service with a rollout in
the environment, judged by its newest rollout's ``spec.groups`` (the ``DeployGroups``
search attribute the starter sets; read from the run's input for a run without it, as
before it existed; ``--scope all`` takes them all). Then one ScopeRollback runs their
rollbacks in parallel as child workflows. Exit codes: 0 every member rolled back (or had
nothing to stop), 1 any failed, 2 invalid input (a scope with no member), 3 Temporal
unreachable.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from typing import Any, TextIO

from pydantic import ValidationError
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.service import RPCError

from starters import emergency
from starters.errors import EXIT_OK, NotFound, UsageError
from starters.operator import named
from starters.progress import POLL_SECONDS, print_events, print_result
from workers.config import TemporalConfig
from workflows.core import search_attributes as sa
from workflows.core.spec import NAME_PATTERN, validation_problems
from workflows.core.timeouts import WORKFLOW_TASK_TIMEOUT
from workflows.rollouts.emergency_plan import started_input
from workflows.rollouts.groups import ALL, in_scope
from workflows.rollouts.registry import WORKFLOW_TYPES
from workflows.rollouts.scope_rollback import ScopeRollback
from workflows.rollouts.scope_rollback_models import (
    ScopeRollbackRequest,
    ScopeRollbackStatus,
    scope_rollback_workflow_id,
)
from workflows.rollouts.spec import Rollout

SPEC_READS_IN_FLIGHT = 16
MAX_REASON = 1000  # ScopeRollbackRequest.reason


def prepare(args: argparse.Namespace) -> None:
    """SERVICE or ``--scope``, not both; ``--canary-only`` needs ``--scope`` (exit 2
    before anything connects)."""
    if args.scope is None:
        if args.service is None:
            raise UsageError("SERVICE: name a service, or a group with --scope GROUP (or all)")
        if args.canary_only or args.wait:
            flag = "--canary-only" if args.canary_only else "--wait"
            raise UsageError(f"{flag}: only with --scope")
        return
    if args.service is not None:
        raise UsageError("--scope: give SERVICE or --scope, not both")
    if args.to is not None:
        raise UsageError("--to: a scope's services go back to their own last good versions")
    if args.reason is not None and len(args.reason) > MAX_REASON:
        raise UsageError(f"--reason: at most {MAX_REASON} characters")
    for flag, value in (("--scope", args.scope), ("--env", args.env)):
        if len(value) > 63 or not re.fullmatch(NAME_PATTERN, value):
            raise UsageError(f"{flag}: must be a name like backend (a-z, 0-9, -), got {value!r}")


async def command(args: argparse.Namespace, config: TemporalConfig, client: Client) -> int:
    """`deployflow rollback`: one service, or a scope."""
    if args.scope is None:
        return await emergency.rollback(args, config, client)
    return await rollback(args, config, client)


async def members(client: Client, scope: str, environment: str) -> list[str]:
    """The services of ``scope`` in ``environment``, by their newest rollout's spec, sorted;
    ``NotFound`` when there is none."""
    types = ", ".join(repr(t) for t in WORKFLOW_TYPES)
    query = f"WorkflowType IN ({types}) AND DeployEnvironment = {json.dumps(environment)}"
    newest: dict[str, tuple[str, str, list[str] | None]] = {}
    async for wf in client.list_workflows(query, page_size=1000):  # newest first
        service = wf.typed_search_attributes.get(sa.DEPLOY_SERVICE)
        if service is not None and service not in newest:
            newest[service] = (wf.id, wf.run_id, sa.groups_of(wf.typed_search_attributes))
    reads = asyncio.Semaphore(SPEC_READS_IN_FLIGHT)

    async def groups(workflow_id: str, run_id: str, listed: list[str] | None) -> list[str]:
        if listed is not None or scope == ALL:
            return listed or []  # DeployGroups, set by the starter
        async with reads:  # no groups, or started before DeployGroups: its input says
            return (await started_input(client, workflow_id, Rollout, run_id)).spec.groups

    found = await asyncio.gather(*(groups(*entry) for entry in newest.values()))
    chosen = sorted(s for s, g in zip(newest, found, strict=True) if in_scope(scope, g))
    if not chosen:
        what = "no service has a rollout" if scope == ALL else f"no service is in group {scope!r}"
        raise NotFound(
            f"--scope: {what} in {environment} (groups come from spec.groups of each "
            "service's newest rollout there)"
        )
    return chosen


async def start_scope_rollback(
    client: Client, config: TemporalConfig, request: ScopeRollbackRequest
) -> WorkflowHandle[Any, ScopeRollbackStatus]:
    """Start the ScopeRollback, or attach to the one of this scope already running."""
    what = "running rollouts" if request.canary_only else "emergency rollback"
    return await client.start_workflow(
        ScopeRollback.run,
        request,
        id=scope_rollback_workflow_id(request.scope, request.environment, request.canary_only),
        task_queue=config.task_queue,
        task_timeout=WORKFLOW_TASK_TIMEOUT,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(sa.DEPLOY_ENVIRONMENT, request.environment),
                SearchAttributePair(sa.DEPLOY_STRATEGY, "rollback-scope"),
            ]
        ),
        static_summary=f"{what} of {request.scope} in {request.environment}",
        static_details=f"services: {', '.join(request.services)}\n\n{request.reason}",
    )


async def rollback(args: argparse.Namespace, config: TemporalConfig, client: Client) -> int:
    services = await members(client, args.scope, args.env)
    try:
        request = ScopeRollbackRequest(
            scope=args.scope,
            environment=args.env,
            services=services,
            canary_only=args.canary_only,
            reason=args.reason or "emergency rollback",
            by=named(),
        )
    except ValidationError as exc:  # a scope of over 500 services
        raise UsageError("; ".join(validation_problems(exc))) from None
    handle = await start_scope_rollback(client, config, request)
    url = config.workflow_url(handle.id)
    if not args.wait:
        if args.json:
            print(json.dumps({"workflowId": handle.id, "services": services, "url": url}))
        else:
            print(f"started {handle.id} for {', '.join(services)} — {url}")
        return EXIT_OK
    print(f"{handle.id} ({', '.join(services)}) — {url}", file=sys.stderr)
    shown = await follow(handle, out=sys.stderr)
    return await print_result(
        handle,
        lambda result: summary(handle.id, result),
        lambda result: not result.failed,
        json_output=args.json,
        shown=shown,
    )


async def follow(handle: WorkflowHandle[Any, ScopeRollbackStatus], *, out: TextIO) -> int:
    """Print the run's timeline as it grows until it closes; the events printed."""
    seen = 0
    while True:
        try:
            status = await handle.query(ScopeRollback.status)
        except RPCError:  # no worker has taken the run up yet, or it just closed
            status = None
        if status is not None:
            print_events(status.events[seen:], out=out)
            seen = len(status.events)
        description = await handle.describe()
        if description.status != WorkflowExecutionStatus.RUNNING:
            return seen
        await asyncio.sleep(POLL_SECONDS)


def summary(workflow_id: str, result: ScopeRollbackStatus) -> str:
    """A headline and one line per service: versions before → after, outcome, why."""
    counts: dict[str, int] = {}
    for entry in result.services:
        counts[entry.outcome.value] = counts.get(entry.outcome.value, 0) + 1
    tally = ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items()))
    lines = [f"{workflow_id}: {result.scope} in {result.environment}: {tally}"]
    width = max(len(s.service) for s in result.services)
    for s in result.services:
        versions = f"{s.canary or s.before or '-'} → {s.after or '-'}"
        lines.append(
            f"  {s.service:<{width}}  {s.outcome.value:<10}  {versions:<20}  "
            f"{s.root_cause or s.reason or ''}"
        )
    return "\n".join(lines)
