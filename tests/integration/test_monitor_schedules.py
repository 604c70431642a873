"""`deployflow monitor …` against the real dev server: schedules, their calendars, verbs.

The monitor workflow itself is not under test here: a stub registered as
``ServiceMonitor`` stands in for it, so a triggered run completes and shows the input the
schedule hands over.
"""

from __future__ import annotations

import argparse
import json
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio
import yaml
from temporalio import workflow
from temporalio.client import Client, ScheduleOverlapPolicy
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import UnsandboxedWorkflowRunner

from starters import commands
from starters.errors import UsageError
from tests.fixtures.cli import run_cli
from tests.fixtures.harness import poll, worker
from tests.unit.test_schedules import next_fires
from workers.config import TemporalConfig
from workflows.monitors.schedules import schedule_spec
from workflows.monitors.spec import ServiceMonitor, load_monitor

pytestmark = pytest.mark.integration

Run = Callable[..., Awaitable[tuple[int, str]]]


@workflow.defn(name="ServiceMonitor")
class StubMonitor:
    @workflow.run
    async def run(self, monitor: ServiceMonitor) -> str:
        runbook = monitor.runbook.name if monitor.runbook else "none"
        return f"{monitor.spec.service}/{monitor.spec.environment} runbook={runbook}"


def monitor_file(tmp_path: Path, name: str, schedule: dict[str, Any]) -> Path:
    documents = [
        {
            "apiVersion": "deployflow/v1",
            "kind": "ServiceMonitor",
            "metadata": {"name": name},
            "spec": {
                "service": "checkout",
                "environment": "production",
                "schedule": schedule,
                "servers": ["127.0.0.1:18001"],
                "healthCheck": {"http": {}},
                "incident": {"runbook": "checkout-unhealthy"},
            },
        },
        {
            "apiVersion": "deployflow/v1",
            "kind": "Runbook",
            "metadata": {"name": "checkout-unhealthy"},
            "spec": {"steps": [{"page": {}}]},
        },
    ]
    path = tmp_path / f"{name}-{uuid.uuid4().hex[:4]}.yaml"
    path.write_text(yaml.safe_dump_all(documents))
    return path


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


@pytest_asyncio.fixture
async def client(temporal_env) -> AsyncIterator[Client]:
    # A client of its own: the environment's client would time-skip what it starts.
    address = temporal_env.client.service_client.config.target_host
    yield await Client.connect(address, data_converter=pydantic_data_converter)


@pytest.fixture
def config(client: Client) -> TemporalConfig:
    return TemporalConfig(
        address=client.service_client.config.target_host,
        task_queue=f"monitors-{uuid.uuid4().hex[:8]}",
    )


@pytest.fixture
def run(client: Client, config: TemporalConfig, capsys: pytest.CaptureFixture[str]) -> Run:
    """``deployflow monitor ARGS`` in-process through the verbs' own parsers: (code, stdout)."""
    parser = argparse.ArgumentParser(prog="deployflow")
    commands.add_monitor(parser.add_subparsers(dest="command", required=True))

    async def invoke(*argv: str) -> tuple[int, str]:
        capsys.readouterr()
        args = parser.parse_args(["monitor", *argv])
        if getattr(args, "prepare", None):
            args.prepare(args)
        if not getattr(args, "needs_client", True):
            code: int = args.func(args)
        else:
            code = await args.func(args, config, client)
        return code, capsys.readouterr().out

    return invoke


async def listed(run: Run) -> dict[str, dict[str, Any]]:
    code, out = await run("list", "--json")
    assert code == 0
    return {row["scheduleId"]: row for row in json.loads(out)}


def zone_well_inside_a_day() -> ZoneInfo:
    """A zone whose local time is far enough from midnight for a window ending soon."""
    for name in ("Asia/Kathmandu", "America/St_Johns", "Pacific/Chatham", "Europe/Berlin"):
        local = datetime.now(ZoneInfo(name))
        if 0 < local.hour < 23:
            return ZoneInfo(name)
    raise AssertionError("unreachable: four zones cannot all be near midnight")


async def test_schedule_creates_a_skip_overlap_schedule_firing_when_the_spec_says(
    run: Run, client: Client, tmp_path: Path
):
    zone = zone_well_inside_a_day()
    end = datetime.now(zone) + timedelta(minutes=6)
    path = monitor_file(
        tmp_path,
        unique("cadence"),
        {
            "timeZone": str(zone),
            "businessHours": {
                "days": ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
                "start": "00:00",
                "end": f"{end:%H:%M}",
                "every": "1m",
            },
            "offHours": {"every": "15m"},
        },
    )
    code, out = await run("schedule", str(path), "--json")
    assert code == 0
    shown = json.loads(out)
    assert shown["outcome"] == "created"
    assert shown["paused"] is False
    assert len(shown["nextRuns"]) == 3
    assert all(datetime.fromisoformat(t).utcoffset() == end.utcoffset() for t in shown["nextRuns"])

    monitor = load_monitor(path.read_text())
    description = await client.get_schedule_handle(shown["scheduleId"]).describe()
    assert description.schedule.policy.overlap == ScheduleOverlapPolicy.SKIP
    assert description.schedule.policy.catchup_window == timedelta(minutes=1)
    assert description.schedule.spec.time_zone_name == str(zone)
    # The server's next runs are exactly the minutes our reading of the calendars fires
    # at: every minute until the window's (exclusive) end, then on the quarter hour.
    server = [t.astimezone(UTC) for t in description.info.next_action_times]
    assert len(server) >= 8
    assert server == next_fires(
        schedule_spec(monitor), server[0] - timedelta(seconds=1), len(server)
    )
    gaps = {b - a for a, b in pairwise(server)}
    assert timedelta(minutes=1) in gaps
    assert any(gap > timedelta(minutes=1) for gap in gaps)
    assert {t.astimezone(zone).minute % 15 for t in server if t >= end.replace(second=0)} == {0}
    await client.get_schedule_handle(shown["scheduleId"]).delete()


async def test_scheduling_again_updates_the_schedule_and_keeps_a_pause(
    run: Run, client: Client, tmp_path: Path
):
    name = unique("update")
    code, out = await run(
        "schedule", str(monitor_file(tmp_path, name, {"offHours": {"every": "15m"}}))
    )
    assert code == 0
    assert f"monitor-{name}: created" in out
    code, _ = await run("pause", name, "--note", "maintenance window")
    assert code == 0

    code, out = await run(
        "schedule", str(monitor_file(tmp_path, name, {"offHours": {"every": "2h"}})), "--json"
    )
    assert code == 0
    shown = json.loads(out)
    assert (shown["outcome"], shown["paused"]) == ("updated", True)
    description = await client.get_schedule_handle(f"monitor-{name}").describe()
    assert description.schedule.state.paused
    assert description.schedule.state.note == "maintenance window"
    assert all(t.minute == 0 and t.hour % 2 == 0 for t in description.info.next_action_times)

    async def listed_once() -> bool:
        rows = await listed(run)
        return f"monitor-{name}" in rows and rows[f"monitor-{name}"]["paused"]

    await poll(listed_once, "the updated schedule in list", 20, 0.2)
    await client.get_schedule_handle(f"monitor-{name}").delete()


async def test_pause_unpause_trigger_list_and_delete(
    run: Run, client: Client, config: TemporalConfig, tmp_path: Path
):
    name = unique("verbs")
    schedule_id = f"monitor-{name}"
    path = monitor_file(tmp_path, name, {"offHours": {"every": "24h"}})
    assert (await run("schedule", str(path)))[0] == 0
    handle = client.get_schedule_handle(schedule_id)

    code, out = await run("pause", schedule_id)  # the schedule id works as NAME too
    assert (code, out.strip()) == (0, f"{schedule_id}: paused")
    state = (await handle.describe()).schedule.state
    assert state.paused
    assert state.note is not None
    assert state.note.startswith("paused by ")

    code, out = await run("unpause", name)
    assert (code, out.strip()) == (0, f"{schedule_id}: unpaused")
    assert not (await handle.describe()).schedule.state.paused

    async with worker(
        client,
        [StubMonitor],
        task_queue=config.task_queue,
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        code, out = await run("trigger", name)
        assert (code, out.strip()) == (0, f"{schedule_id}: triggered")

        async def ran() -> bool:
            return bool((await handle.describe()).info.recent_actions)

        await poll(ran, "the triggered run", 20, 0.2)
        action = (await handle.describe()).info.recent_actions[-1].action
        workflow_id = getattr(action, "workflow_id", "")
        assert workflow_id.startswith(f"{schedule_id}-run-")
        result = await client.get_workflow_handle(workflow_id).result()
        assert result == "checkout/production runbook=checkout-unhealthy"

        async def completed() -> bool:
            row = (await listed(run)).get(schedule_id)
            return row is not None and row["lastResult"] == "Completed"

        await poll(completed, "list shows the completed run", 20, 0.2)
    row = (await listed(run))[schedule_id]
    assert row["paused"] is False
    assert row["nextRun"] is not None
    assert row["lastRun"] is not None
    code, out = await run("list")
    assert code == 0
    assert any(line.startswith(name) and "Completed" in line for line in out.splitlines())

    code, out = await run("delete", name)
    assert (code, out.strip()) == (0, f"{schedule_id}: deleted (runs already started go on)")

    async def gone() -> bool:
        return schedule_id not in await listed(run)

    await poll(gone, "the deleted schedule leaves list", 20, 0.2)


@pytest.mark.parametrize("verb", ["pause", "unpause", "trigger", "delete"])
async def test_an_unknown_monitor_is_a_usage_error(run: Run, verb: str):
    with pytest.raises(UsageError, match=r"NAME nope-\w+: no monitor of that name"):
        await run(verb, unique("nope"))


async def test_the_deployflow_cli_schedules_lists_and_deletes_a_monitor(
    client: Client, tmp_path: Path
):
    address = client.service_client.config.target_host
    env = {**os.environ, "TEMPORAL_ADDRESS": address}
    name = unique("cli")
    path = monitor_file(tmp_path, name, {"offHours": {"every": "30m"}})

    code, out, err = await run_cli(env, "monitor", "lint", str(path), "--json")
    assert (code, json.loads(out)["scheduleId"]) == (0, f"monitor-{name}"), err
    code, out, err = await run_cli(env, "monitor", "schedule", str(path))
    assert code == 0, err
    assert f"monitor-{name}: created" in out
    code, _, err = await run_cli(env, "monitor", "pause", unique("nope"))
    assert code == 2
    assert "no monitor of that name" in err
    code, out, err = await run_cli(env, "monitor", "delete", name)
    assert code == 0, err

    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: ServiceMonitor\n")
    code, _, err = await run_cli(env, "monitor", "schedule", str(bad))
    assert code == 2
    assert "apiVersion" in err
