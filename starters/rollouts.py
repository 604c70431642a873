"""`deployflow rollout …`: lint, start (and wait), status, list and the operator verbs.

Exit codes are for CI: 0 promoted / done, 1 rolled back, aborted or failed, 2 invalid
input (spec, arguments, a verb that does not apply now, a rollout already running),
3 Temporal unreachable.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from datetime import datetime
from typing import Any

from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from activities.errors import root_cause
from activities.model import Model
from starters import spec_files
from starters.deploy_memo import parse_commit_time, start_memo
from starters.errors import EXIT_FAILED, EXIT_OK, Conflict, NotFound, UsageError, print_failed
from starters.progress import follow, print_events, print_status
from workers.config import TemporalConfig
from workflows import search_attributes as sa
from workflows.emergency_models import rollback_workflow_id
from workflows.registry import WORKFLOW_TYPES, workflow_type
from workflows.rollout_models import OperatorInput, RolloutPhase, RolloutResult, RolloutStatus
from workflows.spec import Rollout, load_rollout, rollout_workflow_id
from workflows.timeouts import WORKFLOW_TASK_TIMEOUT

VERBS = ("promote", "pause", "resume", "abort")


def read_spec(path: str) -> Rollout:
    return spec_files.read(path, load_rollout)


def describe(rollout: Rollout) -> str:
    """One line: what this spec does."""
    spec = rollout.spec
    what = f"{spec.strategy.name} of {spec.service} {spec.version} in {spec.environment}"
    if spec.strategy.canary is not None:
        steps = spec.strategy.canary.steps
        return f"{what}, {len(steps)} steps: " + " → ".join(s.describe() for s in steps)
    return what


def lint(args: argparse.Namespace) -> int:
    return spec_files.lint(args, load_rollout, lambda r: (r.workflow_id, describe(r)))


def prepare_start(args: argparse.Namespace) -> None:
    """Validate the spec before contacting Temporal: bad input is exit 2 even offline."""
    args.rollout = read_spec(args.file)


async def start(args: argparse.Namespace, config: TemporalConfig, client: Client) -> int:
    handle = await start_rollout(
        client, config, args.rollout, by=_who(), source=args.file, commit_time=args.commit_time
    )
    url = config.workflow_url(handle.id, handle.result_run_id)
    started = {"workflowId": handle.id, "runId": handle.result_run_id, "url": url}
    if args.json and not args.wait:
        print(json.dumps(started))
        return EXIT_OK
    _err(f"started {handle.id} — {url}")
    if not args.wait:
        return EXIT_OK
    return await wait_for_result(handle, json_output=args.json)


async def start_rollout(
    client: Client,
    config: TemporalConfig,
    rollout: Rollout,
    *,
    by: str,
    source: str,
    commit_time: datetime | None = None,
) -> WorkflowHandle[Any, RolloutResult]:
    """Start ``rollout`` (the CLI's and the API's way); ``Conflict`` when one of the service
    in that environment, or an emergency rollback of it, is running."""
    spec = rollout.spec
    await _refuse_beside_a_rollback(client, rollout)
    try:
        return await client.start_workflow(
            workflow_type(rollout),
            rollout,
            result_type=RolloutResult,
            id=rollout.workflow_id,
            task_queue=config.task_queue,
            task_timeout=WORKFLOW_TASK_TIMEOUT,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(sa.DEPLOY_SERVICE, spec.service),
                    SearchAttributePair(sa.DEPLOY_ENVIRONMENT, spec.environment),
                    SearchAttributePair(sa.DEPLOY_STRATEGY, spec.strategy.name),
                    SearchAttributePair(sa.DEPLOY_PHASE, RolloutPhase.PROGRESSING.value),
                ]
            ),
            memo=start_memo(by, commit_time),
            static_summary=(
                f"{spec.strategy.name} {spec.service} {spec.version} → {spec.environment}"
            ),
            static_details=f"{describe(rollout)}\n\nstarted by {by} from {source}",
        )
    except WorkflowAlreadyStartedError:
        await _refuse_beside_a_rollback(client, rollout)  # it may hold the id: say so
        raise Conflict(
            f"a rollout of {spec.service} in {spec.environment} is already running "
            f"(workflow {rollout.workflow_id}); wait for it, or abort it with "
            f"`deployflow rollout abort {spec.service} --env {spec.environment}`"
        ) from None


async def _refuse_beside_a_rollback(client: Client, rollout: Rollout) -> None:
    """An emergency rollback of the service in this environment goes first (it cancels a
    rollout that starts meanwhile): refuse to start one beside it."""
    spec = rollout.spec
    rollback_id = rollback_workflow_id(spec.service, spec.environment)
    try:
        description = await client.get_workflow_handle(rollback_id).describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return
        raise
    if description.status == WorkflowExecutionStatus.RUNNING:
        raise Conflict(
            f"an emergency rollback of {spec.service} in {spec.environment} is running "
            f"(workflow {rollback_id}) and would cancel this rollout; start it once the "
            "rollback has finished"
        )


async def wait_for_result(handle: WorkflowHandle[Any, Any], *, json_output: bool) -> int:
    """Stream progress to stderr until the run closes; the result on stdout; the exit code."""
    printed = await follow(handle, out=sys.stderr)
    try:
        result: RolloutResult = await handle.result()
    except WorkflowFailureError as exc:
        return print_failed(handle.id, exc, json_output=json_output)
    print_events(result.events[printed:], out=sys.stderr)
    if json_output:
        print(result.model_dump_json(by_alias=True))
    else:
        print(f"{handle.id}: {result.outcome.value} — {result.reason}")
    return EXIT_OK if result.outcome is RolloutPhase.PROMOTED else EXIT_FAILED


async def status(args: argparse.Namespace, config: TemporalConfig, client: Client) -> int:
    handle = client.get_workflow_handle(
        await resolve(client, args.name, args.env, running_only=False), result_type=RolloutResult
    )
    description = await handle.describe()
    if description.status == WorkflowExecutionStatus.RUNNING:
        try:
            current: RolloutStatus | RolloutResult = await handle.query(
                "status", result_type=RolloutStatus
            )
        except RPCError as exc:
            # E.g. no worker is running, or its workflow task is failing: say so, plainly.
            print(f"{handle.id}: running, but its status cannot be read now: {exc.message}")
            return EXIT_FAILED
    else:
        try:
            current = await handle.result()
        except WorkflowFailureError as exc:
            return print_failed(handle.id, exc, json_output=args.json)
    if args.json:
        print(current.model_dump_json(by_alias=True))
    else:
        print_status(handle.id, current, config.workflow_url(handle.id), out=sys.stdout)
    return EXIT_OK


async def list_rollouts(args: argparse.Namespace, config: TemporalConfig, client: Client) -> int:
    query = f"WorkflowType IN ({', '.join(repr(t) for t in WORKFLOW_TYPES)})"
    if not args.all:
        query += " AND ExecutionStatus = 'Running'"
    rows = await visibility_rows(client, query, args.limit)
    if args.json:
        print(json.dumps(rows))
        return EXIT_OK
    if not rows:
        print("no rollouts" + ("" if args.all else " running (--all shows finished ones)"))
    for row in rows:
        print(
            f"{row['workflowId']:<40} {row['phase'] or '-':<12} {row['status']:<11} "
            f"{row['started']}"
        )
    return EXIT_OK


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
    request = OperatorInput(reason=getattr(args, "reason", None), by=_who())
    message = await send_verb(handle, name, request)
    print(f"{handle.id}: {message}")
    return EXIT_OK


async def send_verb(handle: WorkflowHandle[Any, Any], name: str, request: Model) -> str:
    """Run the ``name`` update; the workflow's answer. ``Conflict`` (with the workflow's
    reason) when its validator refuses it, ``NotFound`` when the run has closed."""
    try:
        message: str = await handle.execute_update(name, request, result_type=str)
    except WorkflowUpdateFailedError as exc:
        raise Conflict(f"{name} rejected: {root_cause(exc).message}") from None
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
        raise NotFound(f"{handle.id}: not running ({exc.message})") from None
    return message


async def resolve(client: Client, name: str, env: str | None, *, running_only: bool = True) -> str:
    """The workflow id for ``NAME`` (a service, or a workflow id) and ``--env``: the one
    running rollout of that service, or (``running_only=False``) its latest rollout."""
    if env is not None:
        return rollout_workflow_id(name, env)
    if name.startswith("rollout-"):
        return name
    types = ", ".join(repr(t) for t in WORKFLOW_TYPES)
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


def add_parsers(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    rollout = subparsers.add_parser("rollout", help="start, watch and steer rollouts")
    cmds = rollout.add_subparsers(dest="rollout_command", required=True, metavar="COMMAND")

    p = cmds.add_parser("lint", help="validate a spec without starting anything")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=lint, needs_client=False)

    p = cmds.add_parser("start", help="start a rollout from a spec file")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--wait", action="store_true", help="stream progress; exit code = outcome")
    p.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    p.add_argument(
        "--commit-time",
        type=_commit_time,
        metavar="ISO",
        help="when the change was committed (git log -1 --format=%%cI): the DORA report's "
        "lead time for changes",
    )
    p.set_defaults(func=start, prepare=prepare_start)

    p = cmds.add_parser("status", help="phase, step, weights, analysis and timeline")
    _name_args(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=status)

    p = cmds.add_parser("list", help="running rollouts (--all: finished ones too)")
    p.add_argument("--all", action="store_true")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=list_rollouts)

    for name, text in (
        ("promote", "finish the current pause and go on (--full: straight to 100 %)"),
        ("pause", "hold before the next step"),
        ("resume", "continue a paused rollout"),
        ("abort", "stop and send all traffic back to stable"),
    ):
        p = cmds.add_parser(name, help=text)
        _name_args(p)
        if name == "promote":
            p.add_argument("--full", action="store_true", help="skip all remaining steps")
        if name in ("abort", "pause"):
            p.add_argument("--reason", help="recorded in the timeline and history")
        p.set_defaults(func=verb, verb=name)


def _name_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME", help="the service (or the workflow id)")
    parser.add_argument("--env", help="environment (needed when several are running)")


def _commit_time(text: str) -> datetime:
    try:
        return parse_commit_time(text, "")
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix(": ")) from None


def _who() -> str:
    return os.environ.get("DEPLOYFLOW_USER") or getpass.getuser()


def _err(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
