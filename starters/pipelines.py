"""`deployflow pipeline …`: lint, start (or submit a newer version), status, approve, reject.

`start` is update-with-start: with no pipeline running it starts one; with one running it
submits the version to it, which supersedes or queues by the spec's policy — and prints
what became of it (queued behind v2, supersedes v2, ...).

`--as NAME` is the approver recorded in history. Locally nothing checks it; in a shared
cluster, gate who may send `approve`/`reject` with Temporal's authorizer (mTLS or a JWT
claim mapper) and the CLI sets the client identity to the same name, so history shows both.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowFailureError,
    WorkflowHandle,
)
from temporalio.common import WorkflowIDConflictPolicy

from starters import spec_files
from starters.errors import EXIT_FAILED, EXIT_OK, UsageError, print_failed
from starters.progress import print_events
from starters.rollouts import send_verb
from workers.config import TemporalConfig
from workflows.pipeline import PromotionPipeline
from workflows.pipeline_models import (
    ApprovalInput,
    PipelineOutcome,
    PipelineRequest,
    PipelineResult,
    PipelineStatus,
    Submission,
)
from workflows.pipeline_spec import Pipeline, load_pipeline
from workflows.timeouts import WORKFLOW_TASK_TIMEOUT


def read_pipeline(path: str) -> Pipeline:
    return spec_files.read(path, load_pipeline)


def lint(args: argparse.Namespace) -> int:
    return spec_files.lint(args, load_pipeline, _summary)


def _summary(pipeline: Pipeline) -> tuple[str, str]:
    stages = " → ".join(s.environment for s in pipeline.spec.stages)
    return pipeline.workflow_id, f"pipeline {pipeline.name}: {stages}"


def prepare_start(args: argparse.Namespace) -> None:
    args.pipeline = read_pipeline(args.file)
    args.version = args.version or args.pipeline.spec.version
    if not args.version:
        raise UsageError("--version: required (the spec has no spec.version)")
    Submission(version=args.version)  # validates the version text


async def start(args: argparse.Namespace, config: TemporalConfig, client: Client) -> int:
    handle, answer = await submit(client, config, args.pipeline, args.version, args.by)
    url = config.workflow_url(handle.id)
    print(f"{handle.id}: {answer} — {url}", file=sys.stderr)
    if not args.wait:
        if args.json:
            print(json.dumps({"workflowId": handle.id, "url": url, "submitted": answer}))
        return EXIT_OK
    latest = client.get_workflow_handle_for(PromotionPipeline.run, handle.id)
    try:
        result: PipelineResult = await latest.result()
    except WorkflowFailureError as exc:
        return print_failed(handle.id, exc, json_output=args.json)
    print_events(result.events, out=sys.stderr)
    if args.json:
        print(result.model_dump_json(by_alias=True))
    else:
        print(f"{handle.id}: {result.outcome.value} {result.version} — {result.reason}")
    return EXIT_OK if result.outcome is PipelineOutcome.SUCCEEDED else EXIT_FAILED


async def submit(
    client: Client, config: TemporalConfig, pipeline: Pipeline, version: str, by: str | None
) -> tuple[WorkflowHandle[Any, Any], str]:
    """Start the pipeline with ``version``, or submit it to the running one (the CLI's and
    the API's way); its handle and what became of the version (queued, supersedes, ...)."""
    starting = WithStartWorkflowOperation(
        PromotionPipeline.run,
        PipelineRequest(pipeline=pipeline, version=version),
        id=pipeline.workflow_id,
        task_queue=config.task_queue,
        task_timeout=WORKFLOW_TASK_TIMEOUT,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        static_summary=f"pipeline {pipeline.name}",
    )
    answer = await client.execute_update_with_start_workflow(
        PromotionPipeline.submit,
        Submission(version=version, by=by),
        start_workflow_operation=starting,
    )
    return await starting.workflow_handle(), answer


async def status(args: argparse.Namespace, config: TemporalConfig, client: Client) -> int:
    handle = client.get_workflow_handle_for(PromotionPipeline.run, _workflow_id(args.name))
    current: PipelineStatus = await handle.query(PromotionPipeline.status)
    if args.json:
        print(current.model_dump_json(by_alias=True))
        return EXIT_OK
    print(f"{handle.id}: {current.outcome.value} {current.version} — {current.message}")
    for stage in current.stages:
        approvals = ", ".join(f"{a.decision} by {a.approver}" for a in stage.approvals)
        extra = f" [{approvals}]" if approvals else ""
        until = f" until {stage.waiting_until:%Y-%m-%d %H:%M} UTC" if stage.waiting_until else ""
        print(f"  {stage.environment:<14} {stage.state}{until}{extra}")
    if current.queued:
        print(f"  queued: {', '.join(current.queued)}")
    print(f"  ui       {config.workflow_url(handle.id)}")
    return EXIT_OK


async def decide(args: argparse.Namespace, config: TemporalConfig, client: Client) -> int:
    handle = client.get_workflow_handle_for(PromotionPipeline.run, _workflow_id(args.name))
    request = ApprovalInput(approver=args.approver, comment=args.comment or "", stage=args.stage)
    message = await send_verb(handle, args.decision, request)
    print(f"{handle.id}: {message}")
    return EXIT_OK


def _workflow_id(name: str) -> str:
    return name if name.startswith("pipeline-") else f"pipeline-{name}"


def add_parsers(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    pipeline = subparsers.add_parser("pipeline", help="promote a version across environments")
    cmds = pipeline.add_subparsers(dest="pipeline_command", required=True, metavar="COMMAND")

    p = cmds.add_parser("lint", help="validate a pipeline spec")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=lint, needs_client=False)

    p = cmds.add_parser("start", help="start a pipeline, or submit a newer version to it")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--version", help="the version to promote (default: spec.version)")
    p.add_argument("--wait", action="store_true", help="wait for the outcome; exit code = it")
    p.add_argument("--json", action="store_true")
    p.add_argument("--by", help="who submits (recorded)")
    p.set_defaults(func=start, prepare=prepare_start)

    p = cmds.add_parser("status", help="stages, gates, approvals, queue")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=status)

    for decision in ("approve", "reject"):
        p = cmds.add_parser(decision, help=f"{decision} the open approval gate")
        p.add_argument("name", metavar="NAME")
        p.add_argument("--as", dest="approver", required=True, help="the approver's name")
        p.add_argument("--comment", help="recorded with the decision")
        p.add_argument("--stage", help="the environment whose gate this is (default: the open one)")
        p.set_defaults(func=decide, decision=decision, identity_from="approver")
