"""Self-healing on real processes: a schedule runs the monitor, the monitor finds a hung
service, the healer restarts it through the command platform (the host agent), and once
the restart budget is spent the next hang becomes a page at the local PagerDuty."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml
from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter

from starters.errors import EXIT_OK
from tests.fixtures.cli import run_cli
from tests.fixtures.fleet import DemoHosts
from tests.fixtures.harness import poll
from tests.fixtures.notify import NotifyEnv
from tests.fixtures.prometheus import http
from workers.main import ACTIVITY_THREADS, build_worker
from workflows.monitors.healer import SelfHealer
from workflows.monitors.models import HealerStatus, healer_workflow_id

pytestmark = pytest.mark.integration


def monitor_file(directory: Path, name: str, env: str, server: str, hosts: DemoHosts) -> Path:
    platform = hosts.platform()
    platform["command"]["restart"] = [*hosts.agent, "restart", "--port", "{port}"]
    documents: list[dict[str, Any]] = [
        {
            "apiVersion": "deployflow/v1",
            "kind": "ServiceMonitor",
            "metadata": {"name": name},
            "spec": {
                "service": "checkout",
                "environment": env,
                "schedule": {"offHours": {"every": "15m"}},
                "servers": [server],
                "healthCheck": {
                    "http": {"path": "/healthz"},
                    "periodSeconds": 0.5,
                    "timeoutSeconds": 1,
                    "failureThreshold": 2,
                },
                "selfHealing": {
                    "platform": platform,
                    "maxRestarts": 1,
                    "per": "1h",
                    "backoff": "1m",
                    "verifyAfter": "1s",
                },
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
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump_all(documents, sort_keys=False))
    return path


async def healer_status(handle: WorkflowHandle[Any, HealerStatus]) -> HealerStatus | None:
    try:
        return await handle.query(SelfHealer.status)
    except Exception:  # not started yet
        return None


def hang(server: str, on: bool) -> None:
    status, body = http("POST", f"http://{server}/admin/hang", b"1" if on else b"0")
    assert status == 200, body


async def test_scheduled_monitor_restarts_a_hung_service_then_pages_when_the_budget_is_spent(
    temporal_env, demo_hosts: DemoHosts, notify_env: NotifyEnv, tmp_path: Path
):
    address = temporal_env.client.service_client.config.target_host
    client = await Client.connect(address, data_converter=pydantic_data_converter)
    queue = f"monitor-{uuid.uuid4().hex[:8]}"
    env = f"heal-{uuid.uuid4().hex[:6]}"
    name = f"checkout-{env}"
    [server] = demo_hosts.deploy("v1", 1)
    cli_env = {**os.environ, "TEMPORAL_ADDRESS": address, "DEPLOYFLOW_TASK_QUEUE": queue}
    spec = monitor_file(tmp_path, name, env, server, demo_hosts)
    healer = client.get_workflow_handle_for(SelfHealer.run, healer_workflow_id("checkout", env))
    with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
        async with build_worker(client, queue, executor):
            code, _, err = await run_cli(cli_env, "monitor", "schedule", str(spec))
            assert code == EXIT_OK, err
            incidents: list[str] = []
            try:
                hang(server, True)
                pid_before = (demo_hosts.state_dir / f"{server.rsplit(':', 1)[1]}.pid").read_text()
                code, _, err = await run_cli(cli_env, "monitor", "trigger", name)
                assert code == EXIT_OK, err
                healed = await poll(
                    lambda: _with(healer, lambda s: any(e.kind == "verified" for e in s.timeline)),
                    "the restart verified",
                )
                pid_after = (demo_hosts.state_dir / f"{server.rsplit(':', 1)[1]}.pid").read_text()
                assert http("GET", f"http://{server}/healthz")[0] == 200

                hang(server, True)
                code, _, err = await run_cli(cli_env, "monitor", "trigger", name)
                assert code == EXIT_OK, err
                await poll(lambda: notify_env.pagerduty.events(), "the page")
                exhausted = await poll(
                    lambda: _with(healer, lambda s: s.incidents != []), "the incident"
                )
                incidents = exhausted.incidents
                code, out, err = await run_cli(cli_env, "monitor", "status", name, "--json")
                assert code == EXIT_OK, err
                shown = json.loads(out)
                code, text, err = await run_cli(cli_env, "monitor", "status", name)
                assert code == EXIT_OK, err
            finally:
                hang(server, False)
                await run_cli(cli_env, "monitor", "delete", name)
                await healer.terminate("test over")
                for incident in incidents:
                    await client.get_workflow_handle(incident).terminate("test over")
    assert shown["healer"]["incidents"] == incidents
    assert len(shown["healer"]["restarts"]) == 1
    assert "healer   running: 1/1 restarts in the window" in text
    assert pid_before != pid_after
    assert len(healed.restarts) == 1
    assert [
        a for a in demo_hosts.run("current", "--port", server.rsplit(":", 1)[1]).stdout.split()
    ] == ["v1"]
    [event] = notify_env.pagerduty.events()
    assert event["event_action"] == "trigger"
    assert "restart budget exhausted (1 in 1h)" in event["payload"]["summary"]


async def _with(
    handle: WorkflowHandle[Any, HealerStatus], predicate: Callable[[HealerStatus], bool]
) -> HealerStatus | None:
    status = await healer_status(handle)
    return status if status is not None and predicate(status) else None
