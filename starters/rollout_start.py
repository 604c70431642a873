"""`deployflow rollout lint|start`: read a spec, start the rollout, follow it with `--wait`.

Exit codes are for CI: 0 promoted / done (started, without ``--wait``), 1 rolled back,
aborted or failed, 2 invalid input (spec, arguments, a rollout already running), 3 Temporal
unreachable. The commands on running rollouts are in ``starters/rollouts.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from starters import spec_files
from starters.deploy_memo import parse_commit_time, start_memo
from starters.errors import EXIT_OK, Conflict
from starters.operator import who
from starters.progress import follow, print_result
from workers.config import TemporalConfig
from workers.usage import read_text
from workflows.core import search_attributes as sa
from workflows.core.spec import yaml_documents
from workflows.core.timeouts import WORKFLOW_TASK_TIMEOUT
from workflows.rollouts.argo_rollout import beside_the_rollout, replica_count_notes
from workflows.rollouts.emergency_models import rollback_workflow_id
from workflows.rollouts.models import RolloutPhase, RolloutResult
from workflows.rollouts.registry import workflow_type
from workflows.rollouts.spec import Rollout, load_rollout


def read_spec(path: str, templates: list[str] | None = None) -> Rollout:
    return spec_files.read(path, loader(templates or []))


def loader(templates: list[str]) -> Callable[[str, str], Rollout]:
    """``load_rollout`` with the documents of ``--templates`` files (or of the ``*.yaml`` and
    ``*.yml`` files of a directory) after the spec file's own: AnalysisTemplates kept apart,
    as ``kubectl apply -f analysis-templates.yaml`` keeps them in Argo's examples."""
    files: list[Path] = []
    for name in templates:
        path = Path(name)
        files += sorted([*path.glob("*.yaml"), *path.glob("*.yml")]) if path.is_dir() else [path]
    extra = [read_text(f, f"--templates {f}") for f in files]
    return lambda text, source: load_rollout("\n---\n".join([text, *extra]), source)


def describe(rollout: Rollout) -> str:
    """One line: what this spec does."""
    spec = rollout.spec
    what = f"{spec.strategy.name} of {spec.service} {spec.version} in {spec.environment}"
    if spec.targets.workloads is not None:
        what += f" on {spec.targets.workloads.describe()} by router {spec.router.kind}"
        if spec.router.replicas is not None:
            pods = spec.router.replicas.replicas or "the stable Deployment's"
            what += f" (weights as replica counts of {pods} pods, no traffic router)"
    if spec.strategy.canary is not None:
        steps = spec.strategy.canary.steps
        return f"{what}, {len(steps)} steps: " + " → ".join(s.describe() for s in steps)
    return what


def lint(args: argparse.Namespace) -> int:
    load = loader(args.templates)
    code = spec_files.lint(args, load, lambda r: (r.workflow_id, describe(r)))
    if not args.json:
        text = read_text(Path(args.file), f"FILE {args.file}")
        documents = yaml_documents(text, args.file)
        for name in beside_the_rollout(documents):
            print(f"  {name}: not applied by deployflow (kubectl apply it)")
        for note in replica_count_notes(documents):
            print(f"  note: {note}")
    return code


def prepare_start(args: argparse.Namespace) -> None:
    """Validate the spec before contacting Temporal: bad input is exit 2 even offline."""
    args.rollout = read_spec(args.file, args.templates)
    args.commit = None if args.commit_time is None else parse_commit_time(args.commit_time)


async def start(args: argparse.Namespace, config: TemporalConfig, client: Client) -> int:
    handle = await start_rollout(
        client, config, args.rollout, by=who(), source=args.file, commit_time=args.commit
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
                    # spec.groups, for `rollback --scope` (set here: no workflow command)
                    *([SearchAttributePair(sa.DEPLOY_GROUPS, spec.groups)] if spec.groups else []),
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
    return await print_result(
        handle,
        lambda result: f"{handle.id}: {result.outcome.value} — {result.reason}",
        lambda result: result.outcome is RolloutPhase.PROMOTED,
        json_output=json_output,
        shown=printed,
    )


def _err(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
