"""EmergencyRollback on the stub fleet: cancel what runs, go back to the known good version."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest
from temporalio import activity
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.testing import WorkflowEnvironment

from activities.routing.base import Weights
from activities.temporal.activities import AwaitClosedInput, WorkflowWatcher
from tests.fixtures.harness import worker
from tests.workflows.fleet import CANARY, STABLE, Fleet, fleet_rollout
from tests.workflows.harness import wait_for_status
from workflows.rollouts.emergency import EmergencyRollback
from workflows.rollouts.emergency_models import RollbackRequest, RollbackResult
from workflows.rollouts.models import RolloutPhase
from workflows.rollouts.registry import BY_STRATEGY, workflow_type
from workflows.rollouts.spec import Rollout


def emergency_worker(
    env: WorkflowEnvironment, fleet: Fleet, await_closed: Callable[..., Any] | None = None
) -> AbstractAsyncContextManager[str]:
    return worker(
        env,
        [EmergencyRollback, *BY_STRATEGY.values()],
        [*fleet.activities(), await_closed or WorkflowWatcher(env.client).await_closed],
    )


async def roll_back(env: WorkflowEnvironment, tq: str, request: RollbackRequest) -> RollbackResult:
    spec = request.rollout.spec
    return await env.client.execute_workflow(
        EmergencyRollback.run,
        request,
        id=f"rollback-{spec.service}-{spec.environment}-{uuid.uuid4().hex[:4]}",
        task_queue=tq,
    )


async def test_a_promoted_bad_version_is_replaced_by_the_last_good_one(temporal_env):
    fleet = Fleet(
        weights=Weights(stable=0, canary=100),
        versions={**dict.fromkeys(STABLE, "v1"), **dict.fromkeys(CANARY, "v2")},
    )
    spec = fleet_rollout({"canary": {"steps": [{"setWeight": 50}]}})
    async with emergency_worker(temporal_env, fleet) as tq:
        result = await roll_back(temporal_env, tq, RollbackRequest(rollout=spec, target="v1"))
    assert result.reason == "v1 is live"
    assert fleet.weights.stable == 100
    assert fleet.actions("deploy") == [("deploy", h, "v1") for h in STABLE]


async def test_a_running_canary_is_cancelled_and_its_rollback_is_enough(temporal_env):
    fleet = Fleet()
    spec = fleet_rollout({"canary": {"steps": [{"setWeight": 30}, {"pause": {"duration": "30m"}}]}})
    async with emergency_worker(temporal_env, fleet) as tq:
        with temporal_env.with_time_skipping_disabled():
            canary = await temporal_env.client.start_workflow(
                workflow_type(spec), spec, id=spec.workflow_id, task_queue=tq
            )
        await wait_for_status(canary, lambda s: s.phase is RolloutPhase.PAUSED)
        request = RollbackRequest(
            rollout=spec, target="v1", cancel_workflow_id=spec.workflow_id, reason="pager"
        )
        result = await roll_back(temporal_env, tq, request)
        again = await roll_back(temporal_env, tq, request)
    assert result.reason == "v1 is live: nothing more to do"
    assert again.reason == "v1 is live: nothing more to do"
    assert fleet.weights.stable == 100
    assert fleet.actions("weights") == [("weights", 30), ("weights", 0)]
    assert any("closed: canceled" in e.message for e in result.events), result.events


async def test_without_a_platform_the_router_flips_to_the_idle_list_once(temporal_env):
    fleet = Fleet(weights=Weights(stable=0, canary=100))
    spec = fleet_rollout({"canary": {"steps": [{"setWeight": 50}]}}, platform=None)
    first = RollbackRequest(rollout=spec, target="v1", live="v2", idle="v1")
    # What history tells the second run: the flip made v1 live and left v2 idle.
    second = RollbackRequest(rollout=spec, target="v1", live="v1", idle="v2")
    async with emergency_worker(temporal_env, fleet) as tq:
        result = await roll_back(temporal_env, tq, first)
        again = await roll_back(temporal_env, tq, second)
    assert fleet.weights.stable == 100
    assert fleet.actions("deploy") == []
    assert result.flipped
    assert not again.flipped
    assert again.reason == "v1 is live: nothing more to do"
    assert fleet.actions("weights") == [("weights", 0)]


async def test_without_a_platform_a_version_on_neither_list_is_refused(temporal_env):
    fleet = Fleet(weights=Weights(stable=0, canary=100))
    spec = fleet_rollout({"canary": {"steps": [{"setWeight": 50}]}}, platform=None)
    request = RollbackRequest(rollout=spec, target="v0", live="v2", idle="v1")
    async with emergency_worker(temporal_env, fleet) as tq:
        with pytest.raises(WorkflowFailureError) as failed:
            await roll_back(temporal_env, tq, request)
    assert "v0 runs on neither list (live: v2, idle: v1)" in str(failed.value.cause)
    assert fleet.calls == []


async def test_the_database_returns_to_the_good_versions_revision_after_traffic(temporal_env):
    fleet = Fleet(
        weights=Weights(stable=0, canary=100),
        versions={**dict.fromkeys(STABLE, "v1"), **dict.fromkeys(CANARY, "v2")},
        revision="0003",
    )
    spec = fleet_rollout(
        {"blueGreen": {}}, migrations={"alembic": {"config": "/srv/checkout/alembic.ini"}}
    )
    request = RollbackRequest(rollout=spec, target="v1", database_revision="0001")
    async with emergency_worker(temporal_env, fleet) as tq:
        result = await roll_back(temporal_env, tq, request)
    kinds = [c[0] for c in fleet.calls]
    assert fleet.revision == "0001"
    assert kinds.index("weights") < kinds.index("migrate")  # traffic first, then the schema
    assert fleet.actions("migrate") == [("migrate", "downgrade", "0001")]
    assert any(e.message == "0003 → 0001" for e in result.events)


class Racer:
    """``await_closed`` that, once the cancelled rollout has closed, starts a rollout under
    the same id the way `deployflow rollout start` does — the moment a person could —
    before answering; ``times`` such newcomers at most."""

    def __init__(self, env: WorkflowEnvironment, newcomer: Rollout, times: int) -> None:
        self.env = env
        self.newcomer = newcomer
        self.times = times
        self.task_queue = ""
        self.started: list[str] = []  # run ids

    async def start_running(self, running: Rollout, task_queue: str) -> None:
        """Start the rollout the rollback will cancel (on ``task_queue``, where the
        newcomers start too) and wait for its pause."""
        self.task_queue = task_queue
        canary = await self.env.client.start_workflow(
            workflow_type(running), running, id=running.workflow_id, task_queue=task_queue
        )
        await wait_for_status(canary, lambda s: s.phase is RolloutPhase.PAUSED)

    @activity.defn(name="await_closed")
    async def await_closed(self, input: AwaitClosedInput) -> str:
        status = await WorkflowWatcher(self.env.client).await_closed(input)
        if len(self.started) < self.times:
            handle = await self.env.client.start_workflow(
                workflow_type(self.newcomer),
                self.newcomer,
                id=self.newcomer.workflow_id,
                task_queue=self.task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            )
            assert handle.result_run_id is not None
            self.started.append(handle.result_run_id)
        return status


def race_setup(
    env: WorkflowEnvironment, times: int
) -> tuple[Fleet, RollbackRequest, Racer, Rollout]:
    """v2 is promoted (live on the canary list) and a v3 canary waits for ``promote``;
    the rollback to v1 cancels v3, and a v4 rollout starts as it closes."""
    fleet = Fleet(
        weights=Weights(stable=0, canary=100),
        versions={**dict.fromkeys(STABLE, "v1"), **dict.fromkeys(CANARY, "v2")},
    )
    running = fleet_rollout({"canary": {"steps": [{"setWeight": 30}, {"pause": {}}]}})
    environment = running.spec.environment
    running = running.model_copy(update={"spec": running.spec.model_copy(update={"version": "v3"})})
    newcomer = fleet_rollout(
        {"canary": {"steps": [{"setWeight": 20}, {"pause": {}}]}}, environment=environment
    )
    newcomer = newcomer.model_copy(
        update={"spec": newcomer.spec.model_copy(update={"version": "v4"})}
    )
    request = RollbackRequest(
        rollout=running, target="v1", cancel_workflow_id=running.workflow_id, reason="pager"
    )
    return fleet, request, Racer(env, newcomer, times), running


async def test_a_rollout_started_while_rolling_back_is_cancelled_and_the_rollback_goes_first(
    temporal_env,
):
    fleet, request, racer, running = race_setup(temporal_env, times=1)
    async with emergency_worker(temporal_env, fleet, racer.await_closed) as tq, asyncio.timeout(60):
        await racer.start_running(running, tq)
        result = await roll_back(temporal_env, tq, request)
        [newcomer_run] = racer.started
        newcomer = temporal_env.client.get_workflow_handle(running.workflow_id, run_id=newcomer_run)
        closed = (await newcomer.describe()).status
    assert result.reason == "v1 is live"
    messages = [e.message for e in result.events]
    assert f"a rollout started as {running.workflow_id} meanwhile" in messages
    assert messages.count(f"{running.workflow_id} closed: canceled") == 2
    assert closed is WorkflowExecutionStatus.CANCELED
    live = STABLE if fleet.weights.stable == 100 else CANARY
    assert {fleet.versions[h] for h in live} == {"v1"}


async def test_a_rollback_that_keeps_losing_the_race_stops_and_says_so(temporal_env):
    fleet, request, racer, running = race_setup(temporal_env, times=10)
    async with emergency_worker(temporal_env, fleet, racer.await_closed) as tq, asyncio.timeout(60):
        await racer.start_running(running, tq)
        with pytest.raises(WorkflowFailureError) as failed:
            await roll_back(temporal_env, tq, request)
        newest = temporal_env.client.get_workflow_handle(running.workflow_id)
        still = (await newest.describe()).status
        await newest.cancel()
    cause = failed.value.cause
    assert getattr(cause, "type", None) == "RollbackConflict"
    assert f"{running.workflow_id} was started again 3 times while rolling back" in str(cause)
    assert "v1 was not deployed" in str(cause)
    assert len(racer.started) == 3
    assert still is WorkflowExecutionStatus.RUNNING
