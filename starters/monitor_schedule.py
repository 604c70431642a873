"""`deployflow monitor lint|schedule FILE`: a monitor file checked, and its Temporal Schedule.

`schedule FILE` creates the monitor's schedule or, when it exists, replaces its spec and
action (keeping whether it is paused: re-applying a file must not undo an operator's
pause). `lint` needs no Temporal. The other monitor commands are in ``starters/monitors.py``.
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from zoneinfo import ZoneInfo

from temporalio.client import (
    Client,
    ScheduleAlreadyRunningError,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from starters import spec_files
from starters.errors import EXIT_INVALID, EXIT_OK
from starters.monitors import schedule_url
from workers.config import TemporalConfig
from workflows.core.spec import SpecError
from workflows.monitors.schedules import schedule_for
from workflows.monitors.spec import ServiceMonitor, describe, load_monitor

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
                    "url": schedule_url(config, handle.id),
                }
            )
        )
        return EXIT_OK
    print(f"{handle.id}: {outcome} — {describe(monitor)}")
    if paused:
        print(f"  paused   {description.schedule.state.note or ''} (unpause to run)")
    print(f"  next     {', '.join(_local(t, zone) for t in runs) or 'none'}")
    print(f"  ui       {schedule_url(config, handle.id)}")
    return EXIT_OK


def _local(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%a %Y-%m-%d %H:%M %Z")
