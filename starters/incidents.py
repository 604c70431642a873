"""`deployflow incident …`: list, status, ack, resolve, escalate, approve.

NAME is an incident's workflow id (``incident-checkouterrors-1f2e…``), a unique prefix of
an open one, or a service name with exactly one open incident. The verbs are the
workflow's Updates, so a verb that makes no sense now (acknowledging twice, approving
with nothing pending) is refused with the workflow's reason and exit code 2. Only talking
to Temporal, these read and send plain JSON (``starters/plain_json.py``).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from temporalio.client import Client, WorkflowFailureError
from temporalio.service import RPCError, RPCStatusCode

from activities.errors import root_cause
from starters.errors import EXIT_FAILED, EXIT_OK, NotFound, UsageError
from starters.listing import print_rows
from starters.operator import who
from starters.plain_json import dumps, moment
from starters.rollouts import send_verb, visibility_rows
from workers.config import TemporalConfig
from workflows.core.names import INCIDENT_WORKFLOW_TYPE as WORKFLOW_TYPE

OPEN = f"WorkflowType = '{WORKFLOW_TYPE}' AND ExecutionStatus = 'Running'"


async def list_incidents(args: argparse.Namespace, config: TemporalConfig, client: Client) -> int:
    query = OPEN if not args.all else f"WorkflowType = '{WORKFLOW_TYPE}'"
    rows = await visibility_rows(client, query, args.limit)
    return print_rows(
        rows,
        json_output=args.json,
        empty="no open incidents" + ("" if args.all else " (--all shows resolved ones)"),
        line=lambda row: (
            f"{row['workflowId']:<48} {row['service'] or '-':<16} {row['phase'] or '-':<13} "
            f"{row['started'][:19]}"
        ),
    )


async def status(args: argparse.Namespace, config: TemporalConfig, client: Client) -> int:
    incident = await find(client, args.name, open_only=False)
    handle = client.get_workflow_handle(incident)
    try:
        current: dict[str, Any] = await handle.query("status")  # an IncidentStatus
    except (RPCError, WorkflowFailureError) as exc:
        print(f"{incident}: its status cannot be read now: {root_cause(exc).message}")
        return EXIT_FAILED
    if args.json:
        print(dumps(current))
        return EXIT_OK
    print(f"{incident}: {current['phase']} — {current['title']} (runbook {current['runbook']})")
    print(f"  {config.workflow_url(incident)}")
    print(f"  alert {current['alertStatus']}, {current['notifications']} notification(s)")
    paged = ", ".join(current["pagedLevels"]) or "nobody"
    print(f"  paged: {paged}; restarts: {current['restarts']}")
    if current["waitingFor"]:
        print(f"  waiting for: {current['waitingFor']}")
    if current["timeToAcknowledgeSeconds"] is not None:
        print(
            f"  acknowledged by {current['acknowledgedBy']} after "
            f"{current['timeToAcknowledgeSeconds']:.0f} s"
        )
    if current["timeToResolveSeconds"] is not None:
        print(
            f"  resolved by {current['resolvedBy']} after {current['timeToResolveSeconds']:.0f} s"
        )
    for event in current["timeline"]:
        print(f"  {moment(event['at']):%H:%M:%S} {event['kind']:<12} {event['message']}")
    return EXIT_OK


async def verb(args: argparse.Namespace, config: TemporalConfig, client: Client) -> int:
    incident = await find(client, args.name, open_only=True)
    handle = client.get_workflow_handle(incident)
    request: dict[str, Any] = {"by": who(), "reason": args.reason}  # an OperatorInput
    if args.verb == "approve":
        request["approved"] = not args.reject  # an ApproveInput
    message = await send_verb(handle, args.verb, request)
    print(f"{incident}: {message}")
    return EXIT_OK


async def find(client: Client, name: str, *, open_only: bool) -> str:
    """The incident workflow id NAME means (see the module docstring)."""
    if name.startswith("incident-"):
        try:
            description = await client.get_workflow_handle(name).describe()
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
        else:
            if description.workflow_type == WORKFLOW_TYPE:
                return name
    base = OPEN if open_only else f"WorkflowType = '{WORKFLOW_TYPE}'"
    prefix = f"{base} AND WorkflowId STARTS_WITH {json.dumps(name)}"
    service = f"{base} AND DeployService = {json.dumps(name)}"
    for query in (prefix, service):
        found = sorted({wf.id async for wf in client.list_workflows(query, limit=10)})
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise UsageError(f"NAME {name}: several incidents match ({', '.join(found)})")
    which = "open incident" if open_only else "incident"
    raise NotFound(f"NAME {name}: no {which} with that id, id prefix or service")
