"""`deployflow monitor list|status|pause|unpause|trigger|delete NAME`: scheduled monitors.

NAME is the monitor's metadata name or its schedule id (``monitor-NAME``). `status` also
shows the last run's findings and the service's SelfHealer (restart budget, incidents).
Only talking to Temporal, these read payloads as plain JSON (``starters/plain_json.py``).
`lint` and `schedule FILE` are in ``starters/monitor_schedule.py``.
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from typing import Any

from temporalio.client import (
    Client,
    ScheduleActionExecutionStartWorkflow,
    ScheduleDescription,
    ScheduleHandle,
    WorkflowExecutionStatus,
    WorkflowFailureError,
)
from temporalio.service import RPCError, RPCStatusCode

from starters.errors import EXIT_OK, UsageError
from starters.listing import print_rows
from starters.operator import who
from workers.config import TemporalConfig
from workflows.core.names import healer_workflow_id, monitor_schedule_id
from workflows.core.search_attributes import DEPLOY_ENVIRONMENT, DEPLOY_SERVICE

PREFIX = monitor_schedule_id("")


async def list_monitors(args: argparse.Namespace, config: TemporalConfig, client: Client) -> int:
    """Every ``monitor-*`` schedule: paused or not, the next run, the last run's status."""
    rows: list[dict[str, Any]] = []
    async for entry in await client.list_schedules():
        if not entry.id.startswith(PREFIX):
            continue
        state = entry.schedule.state if entry.schedule else None
        info = entry.info
        last = info.recent_actions[-1] if info and info.recent_actions else None
        upcoming = info.next_action_times[0] if info and info.next_action_times else None
        rows.append(
            {
                "scheduleId": entry.id,
                "paused": bool(state and state.paused),
                "note": state.note if state else None,
                "nextRun": _iso(upcoming),
                "lastRun": _iso(last.scheduled_at if last else None),
                "lastResult": await _result(client, last.action) if last else None,
            }
        )
    rows.sort(key=lambda row: str(row["scheduleId"]))
    return print_rows(
        rows,
        json_output=args.json,
        empty="no monitors scheduled (deployflow monitor schedule FILE)",
        header=f"{'MONITOR':<32} {'STATE':<7} {'NEXT RUN (UTC)':<17} {'LAST RUN (UTC)':<17} RESULT",
        line=lambda row: (
            f"{row['scheduleId'].removeprefix(PREFIX):<32} "
            f"{'paused' if row['paused'] else 'active':<7} "
            f"{_short(row['nextRun']):<17} {_short(row['lastRun']):<17} "
            f"{row['lastResult'] or '-'}"
        ),
    )


async def status(args: argparse.Namespace, config: TemporalConfig, client: Client) -> int:
    """The schedule, its last run's findings, and the service's SelfHealer."""
    handle, description = await find(client, args.name)
    info = description.info
    action = description.schedule.action
    attributes = getattr(action, "typed_search_attributes", None)
    service = attributes.get(DEPLOY_SERVICE) if attributes else None
    environment = attributes.get(DEPLOY_ENVIRONMENT) if attributes else None
    last = info.recent_actions[-1] if info.recent_actions else None
    report: dict[str, Any] = {
        "scheduleId": handle.id,
        "paused": description.schedule.state.paused,
        "nextRun": _iso(info.next_action_times[0] if info.next_action_times else None),
        "lastRun": _iso(last.scheduled_at if last else None),
        "lastResult": await _last_result(client, last.action) if last else None,
        "healer": None,
    }
    if service and environment:
        healer = client.get_workflow_handle(healer_workflow_id(service, environment))
        try:
            current: dict[str, Any] = await healer.query("status")  # a HealerStatus
            running = (await healer.describe()).status == WorkflowExecutionStatus.RUNNING
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
        else:
            report["healer"] = {"running": running, **current}
    if args.json:
        print(json.dumps(report))
        return EXIT_OK
    state = "paused" if report["paused"] else "active"
    print(f"{handle.id}: {state}; next run {_short(report['nextRun'])} UTC")
    print(f"  ui       {schedule_url(config, handle.id)}")
    result = report["lastResult"]
    if result is None:
        print(f"  last run {_short(report['lastRun'])}: no result yet")
    else:
        verdict = "healthy" if result["healthy"] else "unhealthy"
        print(f"  last run {_short(report['lastRun'])}: {verdict}")
        for finding in result["findings"]:
            print(f"    {finding['kind']:<13} {finding['message']}")
        for action_taken in result["actions"]:
            print(f"    → {action_taken}")
    healer_status = report["healer"]
    if healer_status is None:
        print("  healer   none (no restart in the last budget window)")
    else:
        used = len(healer_status["restarts"])
        alive = "running" if healer_status["running"] else "finished"
        print(
            f"  healer   {alive}: {used}/{healer_status['maxRestarts']} restarts in the window; "
            f"incidents: {', '.join(healer_status['incidents']) or 'none'}"
        )
        if healer_status["waitingFor"] and healer_status["running"]:
            print(f"           waiting for {healer_status['waitingFor']}")
    return EXIT_OK


async def _last_result(client: Client, action: Any) -> dict[str, Any] | None:
    """The MonitorResult of the run a schedule started, as JSON (None while it runs)."""
    if not isinstance(action, ScheduleActionExecutionStartWorkflow):
        return None
    handle = client.get_workflow_handle(action.workflow_id, run_id=action.first_execution_run_id)
    try:
        if (await handle.describe()).status != WorkflowExecutionStatus.COMPLETED:
            return None
        result: dict[str, Any] = await handle.result()
    except (RPCError, WorkflowFailureError):
        return None
    return result


async def pause(args: argparse.Namespace, config: TemporalConfig, client: Client) -> int:
    handle, _ = await find(client, args.name)
    await handle.pause(note=args.note or f"paused by {who()} with deployflow")
    print(f"{handle.id}: paused")
    return EXIT_OK


async def unpause(args: argparse.Namespace, config: TemporalConfig, client: Client) -> int:
    handle, _ = await find(client, args.name)
    await handle.unpause(note=args.note or f"unpaused by {who()} with deployflow")
    print(f"{handle.id}: unpaused")
    return EXIT_OK


async def trigger(args: argparse.Namespace, config: TemporalConfig, client: Client) -> int:
    handle, description = await find(client, args.name)
    # The schedule's overlap policy (SKIP) applies: no second run while one is going.
    await handle.trigger()
    running = description.info.running_actions
    note = " (skipped: a run is still going)" if running else ""
    print(f"{handle.id}: triggered{note}")
    return EXIT_OK


async def delete(args: argparse.Namespace, config: TemporalConfig, client: Client) -> int:
    handle, _ = await find(client, args.name)
    await handle.delete()
    print(f"{handle.id}: deleted (runs already started go on)")
    return EXIT_OK


async def find(client: Client, name: str) -> tuple[ScheduleHandle, ScheduleDescription]:
    """The schedule of monitor ``name`` (``checkout-production`` or
    ``monitor-checkout-production``); a ``UsageError`` when there is none."""
    candidates = [monitor_schedule_id(name)]
    if name.startswith(PREFIX):
        candidates.insert(0, name)
    for schedule_id in candidates:
        handle = client.get_schedule_handle(schedule_id)
        try:
            return handle, await handle.describe()
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
    raise UsageError(f"NAME {name}: no monitor of that name (see `deployflow monitor list`)")


async def _result(client: Client, action: Any) -> str | None:
    """The status of the run a schedule started (``Completed``, ``Failed`` …)."""
    if not isinstance(action, ScheduleActionExecutionStartWorkflow):
        return None
    handle = client.get_workflow_handle(action.workflow_id, run_id=action.first_execution_run_id)
    try:
        status = (await handle.describe()).status
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return "gone"
        raise
    return status.name.title().replace("_", "") if status else None


def schedule_url(config: TemporalConfig, schedule_id: str) -> str:
    """The schedule's page in the Temporal UI."""
    return f"{config.ui_url}/namespaces/{config.namespace}/schedules/{schedule_id}"


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _short(iso: str | None) -> str:
    return iso[:16].replace("T", " ") if iso else "-"
