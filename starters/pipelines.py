"""`deployflow pipeline status|approve|reject`: a running pipeline and its approval gates.

`--as NAME` is the approver recorded in history. Locally nothing checks it; in a shared
cluster, gate who may send `approve`/`reject` with Temporal's authorizer (mTLS or a JWT
claim mapper) and the CLI sets the client identity to the same name, so history shows both.

Only talking to Temporal, these read and send plain JSON (``starters/plain_json.py``).
`lint` and `start` are in ``starters/pipeline_start.py``.
"""

from __future__ import annotations

import argparse
from typing import Any

from temporalio.client import Client

from starters.errors import EXIT_OK
from starters.plain_json import dumps, moment
from starters.rollouts import send_verb
from workers.config import TemporalConfig
from workflows.core.names import pipeline_workflow_id


async def status(args: argparse.Namespace, config: TemporalConfig, client: Client) -> int:
    handle = client.get_workflow_handle(_workflow_id(args.name))
    current: dict[str, Any] = await handle.query("status")  # a PipelineStatus
    if args.json:
        print(dumps(current))
        return EXIT_OK
    print(f"{handle.id}: {current['outcome']} {current['version']} — {current['message']}")
    for stage in current["stages"]:
        approvals = ", ".join(f"{a['decision']} by {a['approver']}" for a in stage["approvals"])
        extra = f" [{approvals}]" if approvals else ""
        waiting = stage["waitingUntil"]
        until = f" until {moment(waiting):%Y-%m-%d %H:%M} UTC" if waiting else ""
        print(f"  {stage['environment']:<14} {stage['state']}{until}{extra}")
    if current["queued"]:
        print(f"  queued: {', '.join(current['queued'])}")
    print(f"  ui       {config.workflow_url(handle.id)}")
    return EXIT_OK


async def decide(args: argparse.Namespace, config: TemporalConfig, client: Client) -> int:
    handle = client.get_workflow_handle(_workflow_id(args.name))
    # An ApprovalInput, validated by the workflow.
    request = {"approver": args.approver, "comment": args.comment or "", "stage": args.stage}
    message = await send_verb(handle, args.decision, request)
    print(f"{handle.id}: {message}")
    return EXIT_OK


def _workflow_id(name: str) -> str:
    return name if name.startswith("pipeline-") else pipeline_workflow_id(name)
