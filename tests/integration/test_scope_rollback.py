"""`deployflow rollback --scope GROUP` end to end: three services, each behind its own real
NGINX with demo services v1 (stable list) and v2 (canary list), a real worker on the
session dev server, the CLI as a subprocess. Setup rollouts run through a client in this
process (each CLI process costs seconds); the rollbacks through the CLI.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError

from tests.fixtures.api import ApiClient, ServeApi
from tests.fixtures.cli import REPO, run_cli
from tests.fixtures.harness import poll
from tests.fixtures.nginx import NginxServer
from tests.integration.test_emergency_rollback import eventually_served, versions_served
from workers.main import ACTIVITY_THREADS, build_worker
from workflows.rollouts.canary import CanaryRollout
from workflows.rollouts.models import RolloutPhase, RolloutResult, RolloutStatus
from workflows.rollouts.registry import workflow_type
from workflows.rollouts.scope_rollback import ScopeRollback
from workflows.rollouts.scope_rollback_models import ScopeRollbackStatus, ServiceOutcome
from workflows.rollouts.spec import Rollout

pytestmark = pytest.mark.integration
PROMOTE = {"canary": {"steps": [{"setWeight": 100}]}}
SOAK = {"canary": {"steps": [{"setWeight": 50}, {"pause": {"duration": "30m"}}]}}


@dataclass
class Service:
    name: str
    url: str
    spec: dict[str, Any]
    nginx: NginxServer

    def rollout(self, version: str, strategy: dict[str, Any]) -> Rollout:
        spec = {**self.spec["spec"], "version": version, "strategy": strategy}
        return Rollout.model_validate({**self.spec, "spec": spec})


@dataclass
class Fleet:
    client: Client
    queue: str
    environment: str
    cli_env: dict[str, str]
    services: dict[str, Service]

    async def promote(self, service: str, *versions: str) -> None:
        """Promote ``versions`` in turn (a canary straight to 100 %)."""
        for version in versions:
            rollout = self.services[service].rollout(version, PROMOTE)
            result = await self.client.execute_workflow(
                workflow_type(rollout),
                rollout,
                id=rollout.workflow_id,
                task_queue=self.queue,
                result_type=RolloutResult,
                execution_timeout=timedelta(seconds=60),
            )
            assert result.outcome is RolloutPhase.PROMOTED, result.reason

    async def rollback(self, *args: str) -> tuple[int, str, str]:
        return await run_cli(
            self.cli_env, "rollback", "--env", self.environment, *args, timeout=120
        )

    async def visible(self, runs: int) -> None:
        """Wait until visibility lists ``runs`` closed rollouts in the environment."""
        query = f"DeployEnvironment = '{self.environment}' AND ExecutionStatus != 'Running'"

        async def listed() -> bool:
            return (await self.client.count_workflows(query)).count >= runs

        await poll(listed, f"visibility listing {runs} finished rollouts", 20)


@pytest.fixture
async def fleet(demo_service: Any, nginx_factory: Any, worker_queue: tuple[str, str]) -> Fleet:
    address, queue = worker_queue
    environment = f"sc{uuid.uuid4().hex[:6]}"
    services = {}
    for name, groups in (("api", ["backend"]), ("orders", ["backend"]), ("web", ["frontend"])):
        stable, canary = demo_service("v1", service=name), demo_service("v2", service=name)
        nginx = nginx_factory(stable=[stable.target], canary=[canary.target])
        router = nginx.router_spec(stable=[stable.target], canary=[canary.target])
        spec = {
            "apiVersion": "deployflow/v1",
            "kind": "Rollout",
            "metadata": {"name": name},
            "spec": {
                "service": name,
                "environment": environment,
                "groups": groups,
                "version": "v2",
                "router": {"nginx": router.model_dump(mode="json")},
                "strategy": PROMOTE,
            },
        }
        services[name] = Service(name, nginx.url, spec, nginx)
    client = await Client.connect(address, data_converter=pydantic_data_converter)
    cli_env = {"TEMPORAL_ADDRESS": address, "DEPLOYFLOW_TASK_QUEUE": queue}
    return Fleet(client, queue, environment, {**os.environ, **cli_env}, services)


async def served(service: Service, wanted: set[str]) -> set[str]:
    return set(await eventually_served(service.url, wanted))


async def untouched(*services: Service) -> Callable[[], Awaitable[dict[str, Any]]]:
    """Snapshots of the services' routers once each serves what it should now; call the
    result after the command: each router's changes since (none, if the command left it
    alone) and what it serves (no wait: nothing reloaded)."""
    for service in services:
        await served(service, {"v2"})
    before = {service.name: service.nginx.snapshot() for service in services}

    async def since() -> dict[str, Any]:
        return {
            s.name: (
                s.nginx.changes_since(before[s.name]),
                set(await asyncio.to_thread(versions_served, s.url, 20)),
            )
            for s in services
        }

    return since


async def test_a_scope_rolls_back_its_services_in_parallel_and_one_failure_spares_the_rest(
    fleet: Fleet,
) -> None:
    """api has a good version to go back to (v1 before v2), orders only ever ran v2 (no
    good version: it fails), web is frontend (untouched). Exit 1, one summary."""
    await fleet.promote("api", "v2", "v1", "v2")
    await fleet.promote("orders", "v2")
    await fleet.promote("web", "v2")
    await fleet.visible(5)
    for name in fleet.services:
        assert await served(fleet.services[name], {"v2"}) == {"v2"}

    left_alone = await untouched(fleet.services["orders"], fleet.services["web"])
    started = time.perf_counter()
    code, out, err = await fleet.rollback("--scope", "backend", "--wait", "--json")
    elapsed = time.perf_counter() - started

    assert code == 1, out + err
    print(
        f"\n`deployflow rollback --scope backend --wait` (2 services), end to end: {elapsed:.2f} s"
    )
    result = json.loads(out)
    by_service = {s["service"]: s for s in result["services"]}
    assert sorted(by_service) == ["api", "orders"]  # web is not backend
    api, orders = by_service["api"], by_service["orders"]
    assert (api["outcome"], api["before"], api["after"]) == ("RolledBack", "v2", "v1")
    assert orders["outcome"] == "Failed"
    assert "RollbackImpossible" in orders["rootCause"]
    assert "no other good version" in orders["rootCause"]
    assert "orders" in err
    assert "api" in err
    assert await served(fleet.services["api"], {"v1"}) == {"v1"}
    assert await left_alone() == {"orders": ([], {"v2"}), "web": ([], {"v2"})}

    # The text summary of the same run (attached: it has finished, so a new one starts,
    # finds api already on v1, and orders still without a good version).
    code, out, err = await fleet.rollback("--scope", "backend", "--wait")
    assert code == 1, out + err
    [headline, *rows] = out.strip().splitlines()
    assert "backend in" in headline
    assert "1 Failed" in headline
    assert "1 RolledBack" in headline
    assert any(r.split()[:2] == ["api", "RolledBack"] and "v1 is live" in r for r in rows), rows


async def test_canary_only_stops_running_rollouts_and_leaves_promoted_versions(
    fleet: Fleet,
) -> None:
    await fleet.promote("orders", "v2")
    await fleet.visible(1)
    api = fleet.services["api"].rollout("v2", SOAK)
    handle = await fleet.client.start_workflow(
        workflow_type(api), api, id=api.workflow_id, task_queue=fleet.queue
    )

    async def paused() -> bool:
        status = await handle.query("status", result_type=RolloutStatus)
        return status.phase is RolloutPhase.PAUSED

    await poll(paused, "api's canary paused", 30, every_s=0.2)
    assert await served(fleet.services["api"], {"v1", "v2"}) == {"v1", "v2"}

    left_alone = await untouched(fleet.services["orders"])
    code, out, err = await fleet.rollback("--scope", "all", "--canary-only", "--wait", "--json")

    assert code == 0, out + err
    by_service = {s["service"]: s for s in json.loads(out)["services"]}
    assert by_service["api"]["outcome"] == "RolledBack"
    assert by_service["api"]["canary"] == "v2"
    assert by_service["orders"]["outcome"] == "Skipped"
    assert "promoted version stays" in by_service["orders"]["reason"]
    assert (await handle.describe()).status == WorkflowExecutionStatus.CANCELED
    assert await served(fleet.services["api"], {"v1"}) == {"v1"}
    assert await left_alone() == {"orders": ([], {"v2"})}


async def test_a_scope_that_matches_nothing_is_invalid_input(fleet: Fleet) -> None:
    await fleet.promote("web", "v2")
    await fleet.visible(1)
    left_alone = await untouched(fleet.services["web"])
    code, out, err = await fleet.rollback("--scope", "backend", "--wait")
    assert code == 2, out + err
    assert "--scope: no service is in group 'backend'" in err
    code, out, err = await fleet.rollback("--scope", "Back End")
    assert code == 2
    assert "--scope: must be a name" in err
    assert await left_alone() == {"web": ([], {"v2"})}


async def test_the_api_rolls_a_scope_back_with_an_operate_token(
    fleet: Fleet, serve_api: ServeApi
) -> None:
    await fleet.promote("api", "v2", "v1", "v2")
    await fleet.promote("web", "v2")
    await fleet.visible(4)
    api: ApiClient = await serve_api(fleet.queue)
    path = f"/api/v1/scope-rollbacks/backend/{fleet.environment}"
    left_alone = await untouched(fleet.services["web"])

    status, body = await api.call("POST", path, who="reader", body={})
    assert status == 403, body
    status, body = await api.call("POST", f"/api/v1/scope-rollbacks/payments/{fleet.environment}")
    assert status == 404, body
    assert "no service is in group 'payments'" in body["error"]
    status, body = await api.call("POST", f"/api/v1/scope-rollbacks/Back_End/{fleet.environment}")
    assert status == 400, body
    assert body["error"].startswith("scope: must be a name")

    status, started = await api.call("POST", path, body={"reason": "pager"})
    assert status == 202, started
    assert started["services"] == ["api"]
    assert started["workflowId"] == f"rollback-scope-backend-{fleet.environment}"

    async def finished() -> dict[str, Any] | None:
        code, view = await api.call("GET", path, who="reader")
        assert code == 200, view
        return None if view["running"] else view

    view = await poll(finished, "the scope rollback to finish", 60)
    [service] = view["status"]["services"]
    assert (service["service"], service["outcome"], service["after"]) == ("api", "RolledBack", "v1")
    assert await served(fleet.services["api"], {"v1"}) == {"v1"}
    assert await left_alone() == {"web": ([], {"v2"})}


async def worker_process(fleet: Fleet, queue: str, log: Path) -> asyncio.subprocess.Process:
    """`deployflow worker` on ``queue`` as a process of its own (this test kills it)."""
    env = {**fleet.cli_env, "DEPLOYFLOW_TASK_QUEUE": queue}
    with log.open("ab") as out:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "starters.cli", "worker",
            env=env, cwd=REPO, stdout=out, stderr=out,
        )  # fmt: skip


async def test_a_worker_sigkilled_mid_scope_rollback_is_replaced_and_the_scope_finishes(
    fleet: Fleet, tmp_path: Path
) -> None:
    """api's canary runs on a queue of its own whose worker is stopped, so its cancel waits
    there: the scope rollback (on another queue, a worker process) is held mid-way — child
    started, waiting for the canary to close — when that worker is SIGKILLed. A new worker
    process and the canary's worker coming back let it finish."""
    canary_queue = f"canary-{uuid.uuid4().hex[:6]}"
    scope_queue = f"scope-{uuid.uuid4().hex[:6]}"
    api = fleet.services["api"].rollout("v2", SOAK)
    with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
        async with build_worker(fleet.client, canary_queue, executor):
            handle = await fleet.client.start_workflow(
                workflow_type(api), api, id=api.workflow_id, task_queue=canary_queue
            )

            async def paused() -> bool:
                status = await handle.query(CanaryRollout.status)
                return status.phase is RolloutPhase.PAUSED

            await poll(paused, "the canary pausing at 50 %", 30)
    assert await served(fleet.services["api"], {"v1", "v2"}) == {"v1", "v2"}

    first = await worker_process(fleet, scope_queue, tmp_path / "worker.log")
    env = {**fleet.cli_env, "DEPLOYFLOW_TASK_QUEUE": scope_queue}
    code, out, err = await run_cli(
        env, "rollback", "--env", fleet.environment, "--scope", "backend", "--canary-only",
        "--json", timeout=60,
    )  # fmt: skip
    assert code == 0, out + err
    scope = fleet.client.get_workflow_handle(
        json.loads(out)["workflowId"], result_type=ScopeRollbackStatus
    )

    async def holding() -> bool:
        try:
            status = await scope.query(ScopeRollback.status)
        except RPCError:
            return False
        return [s.outcome for s in status.services] == [ServiceOutcome.ROLLING_BACK]

    await poll(holding, "the scope rollback waiting for the canary to close", 60)
    first.kill()  # SIGKILL
    await first.wait()
    assert (await scope.describe()).status == WorkflowExecutionStatus.RUNNING

    second = await worker_process(fleet, scope_queue, tmp_path / "worker.log")
    try:
        with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
            async with build_worker(fleet.client, canary_queue, executor):
                result = await asyncio.wait_for(scope.result(), 90)
    finally:
        second.terminate()
        await second.wait()
    [entry] = result.services
    assert (entry.service, entry.outcome, entry.canary) == ("api", ServiceOutcome.ROLLED_BACK, "v2")
    assert (await handle.describe()).status == WorkflowExecutionStatus.CANCELED
    assert await served(fleet.services["api"], {"v1"}) == {"v1"}
