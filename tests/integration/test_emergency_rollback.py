"""`deployflow rollback` on real processes: a canary (demo services v1/v2 behind a real NGINX)
that migrated a real PostgreSQL database with the alembic test project in tests/data/alembic
(0001 creates accounts, 0002 adds accounts.email; alembic-broken.ini adds 0003, which fails
halfway). The worker runs in this process on the session dev server and reads the database
URL from its own environment; the CLI runs as a subprocess and never sees the URL.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from activities.clients import Clients
from activities.migrations.activities import MigrationActivities
from activities.migrations.models import MigrateInput
from activities.migrations.spec import MigrationSpec
from activities.routing.base import Weights
from tests.fixtures.cli import run_cli
from tests.fixtures.harness import poll
from tests.fixtures.nginx import NginxServer
from tests.fixtures.postgres import PostgresServer
from tests.workflows.fleet import fleet_rollout
from workflows.rollouts.emergency_models import RollbackRequest, rollback_workflow_id
from workflows.rollouts.models import RolloutPhase, RolloutResult, RolloutStatus
from workflows.rollouts.registry import workflow_type
from workflows.rollouts.spec import Rollout, rollout_workflow_id

pytestmark = pytest.mark.integration

MIGRATIONS = MigrationActivities(Clients())

PROJECT = Path(__file__).resolve().parents[1] / "data" / "alembic"
URL_ENV = "CHECKOUT_DATABASE_URL"  # the worker's variable; deliberately not DATABASE_URL
SERVICE = "checkout"


@dataclass
class Stack:
    address: str
    nginx_url: str
    cli_env: dict[str, str]
    environment: str
    spec: dict[str, Any]
    database: str  # the database's name on postgres_server
    server: PostgresServer
    nginx: NginxServer

    def schema(self) -> dict[str, Any]:
        """Tables and columns in ``public`` (information_schema), and alembic_version."""
        with self.server.connect(self.database) as conn:
            rows = conn.execute(
                "SELECT table_name, column_name FROM information_schema.columns "
                "WHERE table_schema = 'public' ORDER BY table_name, ordinal_position"
            ).fetchall()
            tables: dict[str, list[str]] = {}
            for table, column in rows:
                tables.setdefault(table, []).append(column)
            versions: list[str] = []
            if "alembic_version" in tables:
                versions = [r[0] for r in conn.execute("SELECT version_num FROM alembic_version")]
        return {"tables": tables, "alembic_version": versions}


def alembic(ini: str, target: str = "head") -> dict[str, Any]:
    return {"alembic": {"config": str(PROJECT / ini), "target": target, "urlEnv": URL_ENV}}


def migrate_to(revision: str) -> None:
    """Set the database up with the product's own migrate activity function (in-process)."""
    spec = MigrationSpec.model_validate(alembic("alembic.ini"))
    MIGRATIONS.migrate(
        MigrateInput(migrations=spec, revision=revision, direction="upgrade", key="setup")
    )


@pytest.fixture
def database(
    postgres_server: PostgresServer, postgres_database: str, monkeypatch: pytest.MonkeyPatch
) -> str:
    """A fresh database; its URL is in this process's environment for the worker."""
    monkeypatch.setenv(URL_ENV, postgres_database)
    return postgres_database.rsplit("/", 1)[1]


@pytest.fixture
def worker_queue(database: str, worker_queue: tuple[str, str]) -> tuple[str, str]:
    """The shared real worker, started after the URL is in the environment."""
    return worker_queue


@pytest.fixture
def stack(
    demo_service: Any,
    nginx_factory: Any,
    postgres_server: PostgresServer,
    database: str,
    worker_queue: tuple[str, str],
) -> Stack:
    stable = demo_service("v1")
    canary = demo_service("v2")
    nginx = nginx_factory(stable=[stable.target], canary=[canary.target])
    router = nginx.router_spec(stable=[stable.target], canary=[canary.target])
    address, queue = worker_queue
    environment = f"it{uuid.uuid4().hex[:6]}"
    spec = {
        "apiVersion": "deployflow/v1",
        "kind": "Rollout",
        "metadata": {"name": SERVICE},
        "spec": {
            "service": SERVICE,
            "environment": environment,
            "version": "v2",
            "progressDeadlineSeconds": 60,
            "router": {"nginx": router.model_dump(mode="json")},
            "migrations": alembic("alembic.ini", target="0002_email"),
            "strategy": {"canary": {"steps": [{"setWeight": 50}, {"pause": {"duration": "30m"}}]}},
        },
    }
    cli_env = {k: v for k, v in os.environ.items() if k != URL_ENV}
    cli_env |= {"TEMPORAL_ADDRESS": address, "DEPLOYFLOW_TASK_QUEUE": queue}
    return Stack(address, nginx.url, cli_env, environment, spec, database, postgres_server, nginx)


async def deployflow(stack: Stack, tmp_path: Path, *args: str) -> tuple[int, str, str]:
    path = tmp_path / f"rollout-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(yaml.safe_dump(stack.spec))
    argv = [a.replace("{spec}", str(path)) for a in args]
    return await run_cli(stack.cli_env, *argv)


def versions_served(url: str, requests: int = 30) -> Counter[str]:
    """Which versions answer through NGINX, one fresh connection per request."""
    seen: Counter[str] = Counter()
    for _ in range(requests):
        try:
            body = urllib.request.urlopen(url, timeout=2).read().decode()
        except urllib.error.HTTPError as exc:
            body = exc.read().decode()
        except (urllib.error.URLError, OSError) as exc:
            body = f"error {type(exc).__name__}"
        words = body.split()
        seen[words[1] if len(words) > 1 else body] += 1
    return seen


async def eventually_served(url: str, wanted: set[str], deadline: float = 10.0) -> Counter[str]:
    """Poll until a 40-request sample is exactly ``wanted`` and return it (after a reload,
    NGINX's old workers can take new connections for a moment, longer on a loaded
    machine); the last sample when the deadline passes. Off the event loop, which runs
    the worker."""
    sample: Counter[str] = Counter()
    for _ in range(int(deadline / 0.1)):
        sample = await asyncio.to_thread(versions_served, url, 40)
        if set(sample) == wanted:
            break
        await asyncio.sleep(0.1)
    return sample


async def status_json(stack: Stack, tmp_path: Path) -> dict[str, Any]:
    code, out, err = await deployflow(
        stack, tmp_path, "rollout", "status", SERVICE, "--env", stack.environment, "--json"
    )
    assert code == 0, out + err
    status: dict[str, Any] = json.loads(out)
    return status


async def workflow_status(stack: Stack, workflow_id: str) -> WorkflowExecutionStatus | None:
    client = await Client.connect(stack.address, data_converter=pydantic_data_converter)
    return (await client.get_workflow_handle(workflow_id).describe()).status


async def wait_mid_soak(stack: Stack, tmp_path: Path) -> dict[str, Any]:
    """Poll `rollout status --json` until the rollout sits in its 30-minute pause at 50/50."""

    async def mid_soak() -> dict[str, Any] | None:
        status = await status_json(stack, tmp_path)
        assert status["phase"] in ("Progressing", "Paused"), status
        paused = status["phase"] == "Paused" and (status.get("weights") or {}).get("canary") == 50
        return status if paused else None

    status: dict[str, Any] = await poll(mid_soak, "the rollout paused at 50/50", 30, every_s=0.2)
    assert status["currentStep"] == 1
    assert status["weights"] == {"stable": 50, "canary": 50}
    assert set(await eventually_served(stack.nginx_url, {"v1", "v2"})) == {"v1", "v2"}
    return status


async def rollback(stack: Stack, tmp_path: Path, *args: str) -> tuple[int, str, str]:
    return await deployflow(stack, tmp_path, "rollback", SERVICE, "--env", stack.environment, *args)


@pytest.fixture
def sampler(stack: Stack) -> Iterator[list[tuple[float, str]]]:
    """(perf_counter, version) of requests through NGINX in the background while the test
    runs (one fresh connection each, every 10 ms, at most 60 s)."""
    seen: list[tuple[float, str]] = []
    stop = threading.Event()

    def loop() -> None:
        deadline = time.monotonic() + 60
        while not stop.wait(0.01) and time.monotonic() < deadline:
            [version] = versions_served(stack.nginx_url, 1)
            seen.append((time.perf_counter(), version))

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    yield seen
    stop.set()
    thread.join(timeout=5)


async def test_emergency_rollback_mid_soak_restores_nginx_and_the_database(
    stack: Stack, tmp_path: Path, sampler: list[tuple[float, str]]
) -> None:
    await asyncio.to_thread(migrate_to, "0001_accounts")
    before = await asyncio.to_thread(stack.schema)
    assert before == {
        "tables": {"accounts": ["id", "name"], "alembic_version": ["version_num"]},
        "alembic_version": ["0001_accounts"],
    }
    assert set(await asyncio.to_thread(versions_served, stack.nginx_url, 10)) == {"v1"}

    code, out, err = await deployflow(stack, tmp_path, "rollout", "start", "{spec}")
    assert code == 0, out + err
    status = await wait_mid_soak(stack, tmp_path)
    assert status["database"] == {
        "before": "0001_accounts",
        "target": "0002_email",
        "now": "0002_email",
    }
    migrated = await asyncio.to_thread(stack.schema)
    assert migrated["alembic_version"] == ["0002_email"]
    assert migrated["tables"]["accounts"] == ["id", "name", "email"]

    # No promoted rollout in history, so no "last known good": --to is required.
    started = time.perf_counter()
    code, out, err = await rollback(stack, tmp_path, "--to", "v1", "--reason", "pager", "--json")
    elapsed = time.perf_counter() - started
    assert code == 0, out + err
    rollout_id = rollout_workflow_id(SERVICE, stack.environment)
    result = json.loads(out)
    assert result["reason"] == "the cancelled rollout returned traffic to what ran before (v1)"
    assert f"cancelling {rollout_id}" in err
    first = datetime.fromisoformat(result["events"][0]["at"])
    steps = ", ".join(
        f"{e['kind']} +{(datetime.fromisoformat(e['at']) - first).total_seconds():.2f}"
        for e in result["events"][1:]
    )
    last_v2 = max(t for t, version in sampler if version == "v2")
    print(
        f"\n`deployflow rollback` mid-soak, end to end: {elapsed:.2f} s; "
        f"last response from v2 {last_v2 - started:+.2f} s after the command started; "
        f"EmergencyRollback {steps} s (the rest is the CLI process: imports, connection, "
        "history look-ups)"
    )
    assert set(await eventually_served(stack.nginx_url, {"v1"})) == {"v1"}
    assert await asyncio.to_thread(stack.schema) == before  # 0001 by name; no email column
    assert await workflow_status(stack, rollout_id) == WorkflowExecutionStatus.CANCELED

    # Run a second time: nothing may change (no rewrite, no reload, so no wait either).
    router = stack.nginx.snapshot()
    code, out, err = await rollback(stack, tmp_path, "--to", "v1", "--reason", "pager again")
    assert stack.nginx.changes_since(router) == []
    assert set(await asyncio.to_thread(versions_served, stack.nginx_url, 40)) == {"v1"}
    assert await asyncio.to_thread(stack.schema) == before
    assert await workflow_status(stack, rollout_id) == WorkflowExecutionStatus.CANCELED
    assert code == 0, out + err
    assert "v1 is live: nothing more to do" in out


async def test_a_second_rollback_after_promoted_history_keeps_the_good_version(
    stack: Stack, tmp_path: Path
) -> None:
    """The usual case: earlier promotions in history, a bad canary mid-soak, the pager goes
    off, and `deployflow rollback` is run again (a second operator, a retried script).
    Setup runs through a client in this process (each CLI process costs seconds)."""
    client = await Client.connect(stack.address, data_converter=pydantic_data_converter)
    del stack.spec["spec"]["migrations"]  # traffic only: the database is covered above
    quick = {"canary": {"steps": [{"setWeight": 100}]}}
    for version in ("v2", "v1"):  # v2 promoted onto the canary list, then v1 back on stable
        body = {**stack.spec, "spec": {**stack.spec["spec"], "version": version, "strategy": quick}}
        rollout = Rollout.model_validate(body)
        result = await client.execute_workflow(
            workflow_type(rollout),
            rollout,
            id=rollout.workflow_id,
            task_queue=stack.cli_env["DEPLOYFLOW_TASK_QUEUE"],
            result_type=RolloutResult,
            execution_timeout=timedelta(seconds=30),
        )
        assert result.outcome is RolloutPhase.PROMOTED, result.reason
    assert set(await eventually_served(stack.nginx_url, {"v1"})) == {"v1"}
    query = (
        f"DeployService = '{SERVICE}' AND DeployEnvironment = '{stack.environment}' "
        "AND DeployPhase = 'Promoted' AND ExecutionStatus = 'Completed'"
    )

    async def both_listed() -> bool:  # the rollback finds promotions through visibility
        return (await client.count_workflows(query)).count == 2

    await poll(both_listed, "visibility listing the two promoted rollouts", 10)
    code, out, err = await deployflow(stack, tmp_path, "rollout", "start", "{spec}")
    assert code == 0, out + err
    handle = client.get_workflow_handle(rollout_workflow_id(SERVICE, stack.environment))

    async def mid_soak() -> RolloutStatus | None:
        status = await handle.query("status", result_type=RolloutStatus)
        paused = status.phase is RolloutPhase.PAUSED and status.weights and status.weights.canary
        return status if paused else None

    status: RolloutStatus = await poll(mid_soak, "the rollout paused mid-soak", 15)
    assert status.weights == Weights(stable=50, canary=50)
    assert set(await eventually_served(stack.nginx_url, {"v1", "v2"})) == {"v1", "v2"}

    code, out, err = await rollback(stack, tmp_path, "--reason", "pager")
    assert code == 0, out + err
    assert "back to v1" in err  # the latest promotion is the last known good
    assert set(await eventually_served(stack.nginx_url, {"v1"})) == {"v1"}

    router = stack.nginx.snapshot()
    code, out, err = await rollback(stack, tmp_path, "--reason", "pager again")
    assert code == 0, out + err
    assert "nothing more to do" in out
    assert stack.nginx.changes_since(router) == []  # no rewrite, no reload
    served = await asyncio.to_thread(versions_served, stack.nginx_url, 40)
    assert set(served) == {"v1"}, served


async def test_a_failing_migration_rolls_back_before_any_traffic_moves(
    stack: Stack, tmp_path: Path, sampler: list[tuple[float, str]]
) -> None:
    await asyncio.to_thread(migrate_to, "0002_email")
    before = await asyncio.to_thread(stack.schema)
    # alembic-broken.ini adds broken/0003_broken, which creates a table and a column, then
    # runs invalid SQL; head there is 0003_broken.
    stack.spec["spec"]["migrations"] = alembic("alembic-broken.ini", target="0003_broken")

    code, out, err = await deployflow(
        stack, tmp_path, "rollout", "start", "{spec}", "--wait", "--json"
    )

    assert code == 1, out + err
    result = json.loads(out)
    assert result["outcome"] == "RolledBack"
    assert result["reason"].startswith("migration failed: upgrade to 0003_broken")
    assert "function no_such_function() does not exist" in result["reason"]
    assert result["database"] == {
        "before": "0002_email",
        "target": "0003_broken",
        "now": "0002_email",
    }
    moved = [
        e for e in result["events"] if e["kind"] == "weights" and "canary 0 %" not in e["message"]
    ]
    assert moved == []
    served = Counter(version for _, version in sampler)
    assert served.total() > 0
    assert set(served) == {"v1"}, served  # never a request to v2, nor an error
    assert set(await asyncio.to_thread(versions_served, stack.nginx_url)) == {"v1"}
    assert await asyncio.to_thread(stack.schema) == before  # no audit_log, no nickname


async def test_a_rollout_is_refused_while_an_emergency_rollback_of_it_runs(
    temporal_env: WorkflowEnvironment, tmp_path: Path
):
    """The rollback would cancel it (the emergency goes first): the CLI says so up front."""
    rollout = fleet_rollout({"canary": {"steps": [{"setWeight": 20}]}})
    spec = rollout.spec
    path = tmp_path / "rollout.yaml"
    path.write_text(yaml.safe_dump(rollout.model_dump(mode="json", by_alias=True)))
    queue = f"it-{uuid.uuid4().hex[:8]}"  # no worker polls it: the rollback stays running
    held = await temporal_env.client.start_workflow(
        "EmergencyRollback",
        RollbackRequest(rollout=rollout, target="v1"),
        id=rollback_workflow_id(spec.service, spec.environment),
        task_queue=queue,
    )
    address = temporal_env.client.service_client.config.target_host
    env = {**os.environ, "TEMPORAL_ADDRESS": address, "DEPLOYFLOW_TASK_QUEUE": queue}
    try:
        code, _, err = await run_cli(env, "rollout", "start", str(path))
        with pytest.raises(RPCError):  # nothing was started
            await temporal_env.client.get_workflow_handle(rollout.workflow_id).describe()
    finally:
        await held.terminate("test over")
    assert code == 2, err
    assert (
        f"an emergency rollback of {spec.service} in {spec.environment} is running "
        f"(workflow {held.id}) and would cancel this rollout" in err
    )
