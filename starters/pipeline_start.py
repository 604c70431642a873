"""`deployflow pipeline lint|start`: read a pipeline spec, start it or submit a version.

`start` is update-with-start: with no pipeline running it starts one; with one running it
submits the version to it, which supersedes or queues by the spec's policy — and prints
what became of it (queued behind v2, supersedes v2, ...). `status`, `approve` and `reject`
are in ``starters/pipelines.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowHandle,
)
from temporalio.common import WorkflowIDConflictPolicy

from starters import spec_files
from starters.errors import EXIT_OK, UsageError
from starters.progress import print_result
from workers.config import TemporalConfig
from workflows.core.timeouts import WORKFLOW_TASK_TIMEOUT
from workflows.promotion.models import PipelineOutcome, PipelineRequest, Submission
from workflows.promotion.pipeline import PromotionPipeline
from workflows.promotion.spec import Pipeline, load_pipeline


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


async def start(args: argparse.Namespace, config: TemporalConfig, client: Client) -> int:
    handle, answer = await submit(client, config, args.pipeline, args.version, args.by)
    url = config.workflow_url(handle.id)
    print(f"{handle.id}: {answer} — {url}", file=sys.stderr)
    if not args.wait:
        if args.json:
            print(json.dumps({"workflowId": handle.id, "url": url, "submitted": answer}))
        return EXIT_OK
    latest = client.get_workflow_handle_for(PromotionPipeline.run, handle.id)
    return await print_result(
        latest,
        lambda result: f"{handle.id}: {result.outcome.value} {result.version} — {result.reason}",
        lambda result: result.outcome is PipelineOutcome.SUCCEEDED,
        json_output=args.json,
    )
