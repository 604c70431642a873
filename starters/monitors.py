"""`deployflow monitor …`: scheduled service monitors as Temporal Schedules.

`schedule FILE` creates the monitor's schedule or, when it exists, replaces its spec and
action (keeping whether it is paused: re-applying a file must not undo an operator's
pause). `list`, `status`, `pause`, `unpause`, `trigger` and `delete` take NAME, the
monitor's metadata name or its schedule id (``monitor-NAME``). `status` also shows the
last run's findings and the service's SelfHealer (restart budget, incidents). `lint` needs
no Temporal.
"""

from __future__ import annotations

import argparse
import getpass
import json
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from temporalio.client import (
    Client,
    ScheduleActionExecutionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleDescription,
    ScheduleHandle,
    ScheduleUpdate,
    ScheduleUpdateInput,
    WorkflowExecutionStatus,
    WorkflowFailureError,
)
from temporalio.service import RPCError, RPCStatusCode

from starters import spec_files
from starters.errors import EXIT_INVALID, EXIT_OK, UsageError
from workers.config import TemporalConfig
from workflows.monitor_models import HealerStatus, MonitorResult, healer_workflow_id
from workflows.monitor_spec import ServiceMonitor, describe, load_monitor, monitor_schedule_id
from workflows.schedules import schedule_for
from workflows.search_attributes import DEPLOY_ENVIRONMENT, DEPLOY_SERVICE
from workflows.spec import SpecError

PREFIX = monitor_schedule_id("")
SHOWN_NEXT_RUNS = 3


def read_monitor(path: str) -> ServiceMonitor:
    return spec_files.read(path, load_monitor)


def lint(args: argparse.Namespace) -> int:
    try:
        monitor = read_monitor(args.file)
    except SpecError as exc:
        if args.json:
            print(json.dumps({"valid": False, "file": args.file, "problems": exc.problems}))
            return EXIT_INVALID
        raise
    if args.json:
        print(json.dumps({"valid": True, "file": args.file, "scheduleId": monitor.schedule_id}))
    else:
        print(f"{args.file}: valid — monitor {monitor.name}: {describe(monitor)}")
    return EXIT_OK


def prepare_schedule(args: argparse.Namespace) -> None:
    """Validate the file before contacting Temporal: bad input is exit 2 even offline."""
    args.monitor = read_monitor(args.file)


async def schedule(args: argparse.Namespace, config: TemporalConfig, client: Client) -> int:
    monitor: ServiceMonitor = args.monitor
    wanted = schedule_for(monitor, config.task_queue)
    try:
        handle = await client.create_schedule(monitor.schedule_id, wanted)
        outcome = "created"
    except ScheduleAlreadyRunningError:
        handle = client.get_schedule_handle(monitor.schedule_id)

        def replace(current: ScheduleUpdateInput) -> ScheduleUpdate:
            state = current.description.schedule.state
            if state.paused:
                wanted.state = state
            return ScheduleUpdate(schedule=wanted)

        await handle.update(replace)
        outcome = "updated"
    description = await handle.describe()
    zone = ZoneInfo(monitor.spec.schedule.time_zone)
    runs = description.info.next_action_times[:SHOWN_NEXT_RUNS]
    paused = description.schedule.state.paused
    if args.json:
        print(
            json.dumps(
                {
                    "scheduleId": handle.id,
                    "outcome": outcome,
                    "paused": paused,
                    "nextRuns": [t.astimezone(zone).isoformat() for t in runs],
                    "url": _url(config, handle.id),
                }
            )
        )
        return EXIT_OK
    print(f"{handle.id}: {outcome} — {describe(monitor)}")
    if paused:
        print(f"  paused   {description.schedule.state.note or ''} (unpause to run)")
    print(f"  next     {', '.join(_local(t, zone) for t in runs) or 'none'}")
    print(f"  ui       {_url(config, handle.id)}")
    return EXIT_OK


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
    if args.json:
        print(json.dumps(rows))
        return EXIT_OK
    if not rows:
        print("no monitors scheduled (deployflow monitor schedule FILE)")
        return EXIT_OK
    print(f"{'MONITOR':<32} {'STATE':<7} {'NEXT RUN (UTC)':<17} {'LAST RUN (UTC)':<17} RESULT")
    for row in rows:
        print(
            f"{row['scheduleId'].removeprefix(PREFIX):<32} "
            f"{'paused' if row['paused'] else 'active':<7} "
            f"{_short(row['nextRun']):<17} {_short(row['lastRun']):<17} "
            f"{row['lastResult'] or '-'}"
        )
    return EXIT_OK


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
            current = await healer.query("status", result_type=HealerStatus)
            running = (await healer.describe()).status == WorkflowExecutionStatus.RUNNING
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
        else:
            report["healer"] = {"running": running, **current.model_dump(mode="json")}
    if args.json:
        print(json.dumps(report))
        return EXIT_OK
    state = "paused" if report["paused"] else "active"
    print(f"{handle.id}: {state}; next run {_short(report['nextRun'])} UTC")
    print(f"  ui       {_url(config, handle.id)}")
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
    handle = client.get_workflow_handle(
        action.workflow_id, run_id=action.first_execution_run_id, result_type=MonitorResult
    )
    try:
        if (await handle.describe()).status != WorkflowExecutionStatus.COMPLETED:
            return None
        result: MonitorResult = await handle.result()
    except (RPCError, WorkflowFailureError):
        return None
    return result.model_dump(mode="json", by_alias=True)


async def pause(args: argparse.Namespace, config: TemporalConfig, client: Client) -> int:
    handle, _ = await find(client, args.name)
    await handle.pause(note=args.note or f"paused by {_who()} with deployflow")
    print(f"{handle.id}: paused")
    return EXIT_OK


async def unpause(args: argparse.Namespace, config: TemporalConfig, client: Client) -> int:
    handle, _ = await find(client, args.name)
    await handle.unpause(note=args.note or f"unpaused by {_who()} with deployflow")
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


def _url(config: TemporalConfig, schedule_id: str) -> str:
    return f"{config.ui_url}/namespaces/{config.namespace}/schedules/{schedule_id}"


def _local(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%a %Y-%m-%d %H:%M %Z")


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _short(iso: str | None) -> str:
    return iso[:16].replace("T", " ") if iso else "-"


def _who() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def add_parsers(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    monitor = subparsers.add_parser("monitor", help="scheduled health, SLO and memory monitors")
    cmds = monitor.add_subparsers(dest="monitor_command", required=True, metavar="COMMAND")

    p = cmds.add_parser("lint", help="validate a monitor file (ServiceMonitor + Runbooks)")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=lint, needs_client=False)

    p = cmds.add_parser("schedule", help="create the monitor's schedule, or update it")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=schedule, prepare=prepare_schedule)

    p = cmds.add_parser("list", help="monitors: paused or not, next run, last result")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=list_monitors)

    p = cmds.add_parser("status", help="last run's findings; the self-healer's restart budget")
    p.add_argument("name", metavar="NAME", help="metadata name or schedule id")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=status)

    for verb, func, text in (
        ("pause", pause, "stop scheduling runs (a run going on finishes)"),
        ("unpause", unpause, "schedule runs again"),
    ):
        p = cmds.add_parser(verb, help=text)
        p.add_argument("name", metavar="NAME", help="metadata name or schedule id")
        p.add_argument("--note", help="why (shown on the schedule)")
        p.set_defaults(func=func)

    for verb, func, text in (
        ("trigger", trigger, "run the monitor now"),
        ("delete", delete, "delete the monitor's schedule"),
    ):
        p = cmds.add_parser(verb, help=text)
        p.add_argument("name", metavar="NAME", help="metadata name or schedule id")
        p.set_defaults(func=func)
