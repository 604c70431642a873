"""Operator verbs that reach a rollout in the same activation as something else, and errors
that used to end a rollout with traffic split.

A worker that dies leaves the run's next workflow task waiting; whatever happens meanwhile (a
pause timer fires, an activity completes, an abort update arrives) reaches the replacement
worker in one activation. These tests force each interleaving on the dev server — nothing
polls while the timer fires or the activity completes and the update is admitted — then
start a worker and check the outcome, the router's last weight and the history.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import pytest
from temporalio import workflow
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType, UpdateWorkflowExecutionLifecycleStage
from temporalio.api.update.v1 import UpdateRef, WaitPolicy
from temporalio.api.workflowservice.v1 import PollWorkflowExecutionUpdateRequest
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import CancelledError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from tests.workflows.harness import Stubs, rollout, wait_for_status
from workflows.canary import CanaryRollout
from workflows.rollout_models import OperatorInput, RolloutPhase, RolloutResult
from workflows.spec import CanaryStep, Rollout

SOAK = {"pause": {"duration": "30m"}}


def in_pause_step(status) -> bool:
    return status.phase is RolloutPhase.PAUSED and (status.step or "").startswith("pause")


@asynccontextmanager
async def workflows_only(env: WorkflowEnvironment, tq: str) -> AsyncIterator[None]:
    """Polls workflow tasks only (no sticky cache: the next task goes to any worker)."""
    async with Worker(env.client, task_queue=tq, workflows=[CanaryRollout], max_cached_workflows=0):
        yield


@asynccontextmanager
async def activities_only(env: WorkflowEnvironment, tq: str, stubs: Stubs) -> AsyncIterator[None]:
    async with Worker(env.client, task_queue=tq, activities=stubs.activities()):
        yield


async def start_on(env: WorkflowEnvironment, tq: str, spec: Rollout) -> WorkflowHandle[Any, Any]:
    """Started on real time: the test decides when the pause timer fires."""
    with env.with_time_skipping_disabled():
        return await env.client.start_workflow(
            CanaryRollout.run, spec, id=spec.workflow_id, task_queue=tq
        )


async def admitted(handle: WorkflowHandle[Any, Any], update_id: str) -> None:
    """Until the server holds update ``update_id`` for the run (bounded)."""
    stage = UpdateWorkflowExecutionLifecycleStage.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_ADMITTED
    request = PollWorkflowExecutionUpdateRequest(
        namespace=handle._client.namespace,
        update_ref=UpdateRef(
            workflow_execution=WorkflowExecution(workflow_id=handle.id), update_id=update_id
        ),
        wait_policy=WaitPolicy(lifecycle_stage=stage),
    )
    async with asyncio.timeout(10):
        while True:
            try:
                await handle._client.workflow_service.poll_workflow_execution_update(
                    request, timeout=timedelta(seconds=2)
                )
                return
            except RPCError:  # not yet known to the server
                await asyncio.sleep(0.05)


async def history_types(handle: WorkflowHandle[Any, Any]) -> list[int]:
    return [e.event_type async for e in handle.fetch_history_events()]


async def until_event(handle: WorkflowHandle[Any, Any], event_type: int, count: int = 1) -> None:
    async with asyncio.timeout(10):
        while (await history_types(handle)).count(event_type) < count:
            await asyncio.sleep(0.05)


def send(handle: WorkflowHandle[Any, Any], verb: str, update_id: str) -> asyncio.Task[Any]:
    return asyncio.create_task(
        handle.execute_update(verb, OperatorInput(by="bob", reason="interleaving"), id=update_id)
    )


def accepted_in_first_task_after(events: list[int], first: int) -> bool:
    """The last update was accepted by the first workflow task after the last event of type
    ``first`` before it: both reached the worker together."""
    accepted = len(events) - 1 - events[::-1].index(
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
    )
    before = events[:accepted]
    since = len(before) - 1 - before[::-1].index(first)
    return before[since:].count(EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED) == 1


async def test_abort_in_the_same_activation_as_the_pause_timer(temporal_env):
    stubs = Stubs()
    spec = rollout([{"setWeight": 20}, SOAK, {"setWeight": 50}, SOAK])
    tq = f"tq-{uuid.uuid4().hex}"
    handle = await start_on(temporal_env, tq, spec)
    async with activities_only(temporal_env, tq, stubs):
        async with workflows_only(temporal_env, tq):
            await wait_for_status(handle, in_pause_step)
        await temporal_env.fast_forward(handle, timedelta(minutes=30))
        assert EventType.EVENT_TYPE_TIMER_FIRED in await history_types(handle)
        abort = send(handle, "abort", "abort-1")
        await admitted(handle, "abort-1")
        async with workflows_only(temporal_env, tq):
            await abort
            result: RolloutResult = await handle.result()
    assert result.outcome is RolloutPhase.ABORTED
    assert stubs.canary_weights == [20, 0]  # the step after the pause never ran
    events = await history_types(handle)
    assert accepted_in_first_task_after(events, EventType.EVENT_TYPE_TIMER_FIRED)


async def test_pause_in_the_same_activation_as_the_pause_timer_holds_the_next_step(temporal_env):
    stubs = Stubs()
    spec = rollout([{"setWeight": 20}, SOAK, {"setWeight": 50}])
    tq = f"tq-{uuid.uuid4().hex}"
    handle = await start_on(temporal_env, tq, spec)
    async with activities_only(temporal_env, tq, stubs):
        async with workflows_only(temporal_env, tq):
            await wait_for_status(handle, in_pause_step)
        await temporal_env.fast_forward(handle, timedelta(minutes=30))
        pause = send(handle, "pause", "pause-1")
        await admitted(handle, "pause-1")
        async with workflows_only(temporal_env, tq):
            await pause
            status = await wait_for_status(
                handle, lambda s: s.current_step == 1 and "pause over" in s.message
            )
            assert status.phase is RolloutPhase.PAUSED
            assert stubs.canary_weights == [20]
            await handle.execute_update(CanaryRollout.resume, OperatorInput())
            result: RolloutResult = await handle.result()
    assert result.outcome is RolloutPhase.PROMOTED
    assert stubs.canary_weights == [20, 50, 100]


async def test_abort_while_the_next_weight_change_is_scheduled_but_not_started(temporal_env):
    stubs = Stubs()
    spec = rollout([{"setWeight": 20}, {"pause": {}}, {"setWeight": 50}, {"pause": {}}])
    tq = f"tq-{uuid.uuid4().hex}"
    handle = await start_on(temporal_env, tq, spec)
    async with workflows_only(temporal_env, tq):
        async with activities_only(temporal_env, tq, stubs):
            await wait_for_status(handle, in_pause_step)
        # Nothing polls activities now: the next weight change waits, scheduled.
        await handle.execute_update(CanaryRollout.promote, OperatorInput())
        await until_event(handle, EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, count=3)
        await handle.execute_update(CanaryRollout.abort, OperatorInput(by="bob"))
        async with activities_only(temporal_env, tq, stubs):
            result: RolloutResult = await handle.result()
    assert result.outcome is RolloutPhase.ABORTED
    assert stubs.canary_weights == [20, 0]  # 50 % was cancelled before it started
    assert EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED in await history_types(handle)


async def test_cancel_while_a_weight_change_is_scheduled_but_not_started_rolls_back(
    temporal_env,
):
    stubs = Stubs()
    spec = rollout([{"setWeight": 20}, {"pause": {}}, {"setWeight": 50}])
    tq = f"tq-{uuid.uuid4().hex}"
    handle = await start_on(temporal_env, tq, spec)
    async with workflows_only(temporal_env, tq):
        async with activities_only(temporal_env, tq, stubs):
            await wait_for_status(handle, in_pause_step)
        await handle.execute_update(CanaryRollout.promote, OperatorInput())
        await until_event(handle, EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, count=3)
        await handle.cancel()
        await until_event(handle, EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED)
        async with activities_only(temporal_env, tq, stubs):
            with pytest.raises(WorkflowFailureError) as failure:
                await handle.result()
    assert isinstance(failure.value.cause, CancelledError)
    assert stubs.canary_weights == [20, 0]


async def test_abort_in_the_same_activation_as_a_weight_change_completing(temporal_env):
    stubs = Stubs(hold_key="/step-2")
    spec = rollout([{"setWeight": 20}, {"pause": {}}, {"setWeight": 50}, {"setWeight": 80}])
    tq = f"tq-{uuid.uuid4().hex}"
    handle = await start_on(temporal_env, tq, spec)
    async with activities_only(temporal_env, tq, stubs):
        async with workflows_only(temporal_env, tq):
            await wait_for_status(handle, in_pause_step)
            await handle.execute_update(CanaryRollout.promote, OperatorInput())
            await asyncio.wait_for(stubs.held.wait(), 10)
        # The workflow worker is gone; the 50 % change completes and the abort arrives.
        stubs.release.set()
        await until_event(handle, EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED, count=3)
        abort = send(handle, "abort", "abort-2")
        await admitted(handle, "abort-2")
        async with workflows_only(temporal_env, tq):
            await abort
            result: RolloutResult = await handle.result()
    assert result.outcome is RolloutPhase.ABORTED
    assert stubs.canary_weights == [20, 50, 0]  # no 80 % after the abort
    events = await history_types(handle)
    assert accepted_in_first_task_after(events, EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED)


async def test_a_rollback_that_fails_keeps_the_run_open_until_it_succeeds(temporal_env):
    failing = True
    stubs = Stubs(fail_weights=lambda i: failing and i.key.endswith("/rollback"))
    stubs.measure_values = lambda n: [0.5]  # the analysis fails: roll back
    spec = rollout(
        [{"setWeight": 20}, {"analysis": {"templates": [{"templateName": "error-rate"}]}}]
    )
    tq = f"tq-{uuid.uuid4().hex}"
    async with workflows_only(temporal_env, tq), activities_only(temporal_env, tq, stubs):
        handle = await temporal_env.client.start_workflow(
            CanaryRollout.run, spec, id=spec.workflow_id, task_queue=tq
        )
        status = await wait_for_status(handle, lambda s: "rollback attempt 3 failed" in s.message)
        assert status.phase is RolloutPhase.ROLLING_BACK
        assert "RouterConfigRejected" in status.message and "retrying in" in status.message
        assert (await handle.describe()).status is WorkflowExecutionStatus.RUNNING
        failing = False
        result: RolloutResult = await handle.result()
    assert result.outcome is RolloutPhase.ROLLED_BACK
    assert stubs.canary_weights == [20, 0]
    assert result.weights is not None and result.weights.canary == 0


@workflow.defn(name="CanaryRollout", sandboxed=False)  # the sandbox would re-import this file
class CanaryWithABug(CanaryRollout):
    """The real canary with a programming error in its third step."""

    @workflow.init
    def __init__(self, rollout: Rollout) -> None:
        super().__init__(rollout)

    @workflow.run
    async def run(self, rollout: Rollout) -> RolloutResult:
        return await super().run(rollout)

    async def _run_step(self, index: int, step: CanaryStep) -> None:
        if index == 2:
            raise KeyError("steps[2]")
        await super()._run_step(index, step)


async def test_a_bug_in_a_step_rolls_back_instead_of_leaving_traffic_split(temporal_env):
    stubs = Stubs()
    spec = rollout([{"setWeight": 20}, {"pause": {"duration": "1m"}}, {"setWeight": 50}])
    tq = f"tq-{uuid.uuid4().hex}"
    async with Worker(
        temporal_env.client,
        task_queue=tq,
        workflows=[CanaryWithABug],
        activities=stubs.activities(),
    ):
        handle = await temporal_env.client.start_workflow(
            CanaryWithABug.run, spec, id=spec.workflow_id, task_queue=tq
        )
        # Before the fix the workflow task failed and was retried forever.
        result: RolloutResult = await asyncio.wait_for(handle.result(), 30)
    assert result.outcome is RolloutPhase.ROLLED_BACK
    assert result.reason == "failed: KeyError: 'steps[2]'"
    assert stubs.canary_weights == [20, 0]
