"""`deployflow incident …`: list, status, ack, resolve, escalate, approve.

NAME is an incident's workflow id (``incident-checkouterrors-1f2e…``), a unique prefix of
an open one, or a service name with exactly one open incident. The verbs are the
workflow's Updates, so a verb that makes no sense now (acknowledging twice, approving
with nothing pending) is refused with the workflow's reason and exit code 2.
"""

from __future__ import annotations

import argparse
import json

from temporalio.client import Client, WorkflowFailureError
from temporalio.service import RPCError, RPCStatusCode

from activities.errors import root_cause
from starters.errors import EXIT_FAILED, EXIT_OK, NotFound, UsageError
from starters.rollouts import _who, send_verb, visibility_rows
from workers.config import TemporalConfig
from workflows.incident_models import WORKFLOW_TYPE, ApproveInput, IncidentStatus
from workflows.rollout_models import OperatorInput

OPEN = f"WorkflowType = '{WORKFLOW_TYPE}' AND ExecutionStatus = 'Running'"


async def list_incidents(args: argparse.Namespace, config: TemporalConfig, client: Client) -> int:
    query = OPEN if not args.all else f"WorkflowType = '{WORKFLOW_TYPE}'"
    rows = await visibility_rows(client, query, args.limit)
    if args.json:
        print(json.dumps(rows))
        return EXIT_OK
    if not rows:
        print("no open incidents" + ("" if args.all else " (--all shows resolved ones)"))
    for row in rows:
        print(
            f"{row['workflowId']:<48} {row['service'] or '-':<16} {row['phase'] or '-':<13} "
            f"{row['started'][:19]}"
        )
    return EXIT_OK


async def status(args: argparse.Namespace, config: TemporalConfig, client: Client) -> int:
    incident = await find(client, args.name, open_only=False)
    handle = client.get_workflow_handle(incident, result_type=IncidentStatus)
    try:
        current: IncidentStatus = await handle.query("status", result_type=IncidentStatus)
    except (RPCError, WorkflowFailureError) as exc:
        print(f"{incident}: its status cannot be read now: {root_cause(exc).message}")
        return EXIT_FAILED
    if args.json:
        print(current.model_dump_json(by_alias=True))
        return EXIT_OK
    print(f"{incident}: {current.phase.value} — {current.title} (runbook {current.runbook})")
    print(f"  {config.workflow_url(incident)}")
    print(f"  alert {current.alert_status}, {current.notifications} notification(s)")
    print(f"  paged: {', '.join(current.paged_levels) or 'nobody'}; restarts: {current.restarts}")
    if current.waiting_for:
        print(f"  waiting for: {current.waiting_for}")
    if current.time_to_acknowledge_seconds is not None:
        print(
            f"  acknowledged by {current.acknowledged_by} after "
            f"{current.time_to_acknowledge_seconds:.0f} s"
        )
    if current.time_to_resolve_seconds is not None:
        print(f"  resolved by {current.resolved_by} after {current.time_to_resolve_seconds:.0f} s")
    for event in current.timeline:
        print(f"  {event.at:%H:%M:%S} {event.kind:<12} {event.message}")
    return EXIT_OK


async def verb(args: argparse.Namespace, config: TemporalConfig, client: Client) -> int:
    incident = await find(client, args.name, open_only=True)
    handle = client.get_workflow_handle(incident)
    request: OperatorInput | ApproveInput
    if args.verb == "approve":
        request = ApproveInput(approved=not args.reject, by=_who(), reason=args.reason)
    else:
        request = OperatorInput(by=_who(), reason=args.reason)
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


def add_parsers(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    incident = subparsers.add_parser("incident", help="see and steer incident runbooks")
    cmds = incident.add_subparsers(dest="incident_command", required=True, metavar="COMMAND")

    p = cmds.add_parser("list", help="open incidents (--all: resolved ones too)")
    p.add_argument("--all", action="store_true")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=list_incidents)

    p = cmds.add_parser("status", help="phase, pages, timeline, time to ack and resolve")
    p.add_argument("name", metavar="NAME", help="incident id, id prefix, or service")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=status)

    for name, text in (
        ("acknowledge", "I am on it: stop escalating (PagerDuty is acknowledged too)"),
        ("resolve", "resolve now: pages resolved, Slack thread updated"),
        ("escalate", "page the next escalation level now"),
        ("approve", "decide the pending approval step (--reject to refuse)"),
    ):
        aliases = ["ack"] if name == "acknowledge" else []
        p = cmds.add_parser(name, help=text, aliases=aliases)
        p.add_argument("name", metavar="NAME", help="incident id, id prefix, or service")
        p.add_argument("--reason", help="recorded in the timeline and history")
        if name == "approve":
            p.add_argument("--reject", action="store_true", help="refuse: the step is skipped")
        p.set_defaults(func=verb, verb=name)
