"""`deployflow rollback SERVICE --env ENV [--to VERSION]`: the emergency rollback.

Finds what to go back to — ``--to``, or the last known good version from history (the live
version if a rollout is running, else the version promoted before the live one) — and the
service's spec (from the running or latest rollout's input), then starts an
EmergencyRollback, or attaches to the one already running. Exit 0 when the target is live;
2 when history names no version and ``--to`` none (``NoRollbackTarget``, read by the CLI).
What to go back to is ``workflows/rollouts/emergency_plan.py``'s (the worker plans with it too).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from starters.operator import named
from starters.progress import print_result
from workers.config import TemporalConfig
from workflows.core.timeouts import WORKFLOW_TASK_TIMEOUT
from workflows.rollouts.emergency import EmergencyRollback
from workflows.rollouts.emergency_models import (
    RollbackRequest,
    RollbackResult,
    rollback_workflow_id,
)
from workflows.rollouts.emergency_plan import plan


async def rollback(args: argparse.Namespace, config: TemporalConfig, client: Client) -> int:
    request = await plan(
        client,
        args.service,
        args.env,
        args.to,
        args.reason,
        named(),
        warn=lambda message: print(message, file=sys.stderr),
    )
    target, running_id = request.target, request.cancel_workflow_id
    running = running_id is not None
    print(
        f"rolling {args.service} in {args.env} back to {target or 'what ran before'}"
        + (f" (cancelling {running_id})" if running else ""),
        file=sys.stderr,
    )
    handle = await start_rollback(client, config, request)
    print(f"{handle.id} — {config.workflow_url(handle.id)}", file=sys.stderr)
    return await print_result(
        handle,
        lambda result: f"{handle.id}: {result.version or '-'} — {result.reason}",
        lambda result: True,
        json_output=args.json,
    )


async def start_rollback(
    client: Client, config: TemporalConfig, request: RollbackRequest
) -> WorkflowHandle[Any, RollbackResult]:
    """Start the EmergencyRollback ``request`` plans, or attach to the one running."""
    spec = request.rollout.spec
    return await client.start_workflow(
        EmergencyRollback.run,
        request,
        id=rollback_workflow_id(spec.service, spec.environment),
        task_queue=config.task_queue,
        task_timeout=WORKFLOW_TASK_TIMEOUT,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        static_summary=(
            f"emergency rollback of {spec.service} in {spec.environment} to {request.target}"
        ),
    )
