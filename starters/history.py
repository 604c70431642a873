"""`deployflow history SERVICE [--env ENV]`: what was deployed, how it ended, who decided.

Rows come from Temporal visibility (every finished rollout and emergency rollback of the
service) and each run's result; a rollout that a pipeline ran also shows the approvals its
gate collected. This is the record "last known good" is read from. Only talking to
Temporal, it reads results as plain JSON (``starters/plain_json.py``).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from temporalio.client import Client, WorkflowExecution, WorkflowFailureError

from activities.errors import root_cause
from starters.listing import print_rows
from starters.plain_json import moment
from workers.config import TemporalConfig
from workflows.core import search_attributes as sa
from workflows.core.names import EMERGENCY_ROLLBACK_WORKFLOW_TYPE, ROLLOUT_WORKFLOW_TYPES

TYPES = (*ROLLOUT_WORKFLOW_TYPES, EMERGENCY_ROLLBACK_WORKFLOW_TYPE)


async def history(args: argparse.Namespace, config: TemporalConfig, client: Client) -> int:
    query = (
        f"WorkflowType IN ({', '.join(repr(t) for t in TYPES)}) "
        f"AND DeployService = {json.dumps(args.service)} AND ExecutionStatus != 'Running'"
    )
    if args.env:
        query += f" AND DeployEnvironment = {json.dumps(args.env)}"
    rows = [await _row(client, wf) async for wf in client.list_workflows(query, limit=args.limit)]
    return print_rows(
        rows,
        json_output=args.json,
        empty=f"no finished rollouts of {args.service}" + (f" in {args.env}" if args.env else ""),
        line=_line,
    )


def _line(row: dict[str, Any]) -> str:
    people = ", ".join(row.get("approvals", []) + row.get("operators", []))
    return (
        f"{row['started'][:19]}  {row.get('environment') or '-':<12} "
        f"{row['kind']:<10} {row.get('version', '?'):<10} {row['outcome']:<11} "
        f"{row['duration'] or '-':>8}  {row.get('reason', '')}"
        + (f"  [{people}]" if people else "")
    )


async def _row(client: Client, wf: WorkflowExecution) -> dict[str, Any]:
    row: dict[str, Any] = {
        "workflowId": wf.id,
        "runId": wf.run_id,
        "kind": wf.typed_search_attributes.get(sa.DEPLOY_STRATEGY) or wf.workflow_type,
        "environment": wf.typed_search_attributes.get(sa.DEPLOY_ENVIRONMENT),
        "started": wf.start_time.isoformat(),
        "duration": str(wf.close_time - wf.start_time).split(".")[0] if wf.close_time else None,
    }
    handle = client.get_workflow_handle(wf.id, run_id=wf.run_id)
    try:
        result: dict[str, Any] = await handle.result(follow_runs=False)
    except WorkflowFailureError as exc:
        status = wf.status.name if wf.status else "FAILED"
        return row | {"outcome": status.capitalize(), "reason": root_cause(exc).located}
    if wf.workflow_type == EMERGENCY_ROLLBACK_WORKFLOW_TYPE:  # a RollbackResult
        return row | {
            "version": result["version"],
            "outcome": "RolledBack",
            "reason": result["reason"],
        }
    row |= {  # a RolloutResult
        "version": result["version"],
        "outcome": result["outcome"],
        "reason": result["reason"],
        "operators": [e["message"] for e in result["events"] if e["kind"] in ("promote", "abort")],
    }
    if wf.parent_id:
        row["approvals"] = await _approvals(client, wf, result["environment"])
    return row


async def _approvals(client: Client, wf: WorkflowExecution, environment: str) -> list[str]:
    """The approvals the parent pipeline's gate for ``environment`` collected."""
    assert wf.parent_id is not None
    parent = client.get_workflow_handle(wf.parent_id, run_id=wf.parent_run_id)
    try:
        result = await parent.result(follow_runs=False)  # a PipelineResult
    except Exception:  # still running, continued as new, or failed: no final record
        return []
    stage = next((s for s in result["stages"] if s["environment"] == environment), None)
    if stage is None:
        return []
    return [
        f"{a['decision']} by {a['approver']} at {moment(a['at']):%Y-%m-%d %H:%M}"
        for a in stage["approvals"]
    ]
