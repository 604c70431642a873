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
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import CancelledError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from activities.routing.base import Weights
from tests.fixtures.harness import poll, worker
from tests.workflows.harness import Stubs, rollout, wait_for_status
from workers.main import WORKFLOWS
from workflows.core.spec import Metadata
from workflows.core.verbs import OperatorInput
from workflows.rollouts.canary import CanaryRollout
from workflows.rollouts.models import RolloutPhase, RolloutResult, RolloutStatus
from workflows.rollouts.spec import CanaryStep, Rollout

SOAK = {"pause": {"duration": "30m"}}


def in_pause_step(status) -> bool:
    return status.phase is RolloutPhase.PAUSED and (status.step or "").startswith("pause")


@asynccontextmanager
async def workflows_only(env: WorkflowEnvironment, tq: str) -> AsyncIterator[None]:
    """Polls workflow tasks only (no sticky cache: the next task goes to any worker)."""
    async with worker(env, [CanaryRollout], task_queue=tq, max_cached_workflows=0):
        yield


@asynccontextmanager
async def activities_only(env: WorkflowEnvironment, tq: str, stubs: Stubs) -> AsyncIterator[None]:
    async with worker(env, (), stubs.activities(), task_queue=tq):
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

    async def known() -> bool:
        try:
            await handle._client.workflow_service.poll_workflow_execution_update(
                request, timeout=timedelta(seconds=2)
            )
        except RPCError:  # not yet known to the server
            return False
        return True

    await poll(known, f"update {update_id} admitted", deadline_s=10)


async def history_types(handle: WorkflowHandle[Any, Any]) -> list[int]:
    return [e.event_type async for e in handle.fetch_history_events()]


async def until_event(handle: WorkflowHandle[Any, Any], event_type: int, count: int = 1) -> None:
    async def seen() -> bool:
        return (await history_types(handle)).count(event_type) >= count

    await poll(seen, f"{count} event(s) of type {event_type}", deadline_s=10)


def send(handle: WorkflowHandle[Any, Any], verb: str, update_id: str) -> asyncio.Task[Any]:
    return asyncio.create_task(
        handle.execute_update(verb, OperatorInput(by="bob", reason="interleaving"), id=update_id)
    )


async def assert_replays(handle: WorkflowHandle[Any, Any], *workflows: type) -> None:
    """The run's history replays on the code that made it (unlike the issue-9 repro, whose
    cold-start ordering the SDK does not reproduce: see test_replay.py)."""
    replayer = Replayer(
        workflows=list(workflows or WORKFLOWS), data_converter=pydantic_data_converter
    )
    await replayer.replay_workflow(await handle.fetch_history())


def accepted_in_first_task_after(events: list[int], first: int) -> bool:
    """The last update was accepted by the first workflow task after the last event of type
    ``first`` before it: both reached the worker together."""
    accepted = (
        len(events)
        - 1
        - events[::-1].index(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED)
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
    await assert_replays(handle)


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
    await assert_replays(handle)


async def abort_before_the_next_shift_starts(
    env: WorkflowEnvironment, stubs: Stubs
) -> WorkflowHandle[Any, Any]:
    """Abort while the next weight change is scheduled and no worker has started it."""
    spec = rollout([{"setWeight": 20}, {"pause": {}}, {"setWeight": 50}, {"pause": {}}])
    tq = f"tq-{uuid.uuid4().hex}"
    handle = await start_on(env, tq, spec)
    async with workflows_only(env, tq):
        async with activities_only(env, tq, stubs):
            await wait_for_status(handle, in_pause_step)
        # Nothing polls activities now: the next weight change waits, scheduled.
        await handle.execute_update(CanaryRollout.promote, OperatorInput())
        await until_event(handle, EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, count=3)
        await handle.execute_update(CanaryRollout.abort, OperatorInput(by="bob"))
        async with activities_only(env, tq, stubs):
            await handle.result()
    return handle


async def test_abort_while_the_next_weight_change_is_scheduled_but_not_started(temporal_env):
    stubs = Stubs()
    handle = await abort_before_the_next_shift_starts(temporal_env, stubs)
    result: RolloutResult = await handle.result()
    assert result.outcome is RolloutPhase.ABORTED
    assert stubs.canary_weights == [20, 0]  # 50 % was cancelled before it started
    assert EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED in await history_types(handle)
    await assert_replays(handle)


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
    await assert_replays(handle)


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
    await assert_replays(handle)


async def rollback_failing_three_times(
    env: WorkflowEnvironment,
) -> tuple[WorkflowHandle[Any, Any], Stubs, RolloutStatus]:
    """A failed analysis rolls back; the router refuses the rollback three times, then
    takes it. Returns the status seen while it was failing."""
    failing = [True]
    stubs = Stubs(fail_weights=lambda i: failing[0] and i.key.endswith("/rollback"))
    stubs.measure_values = lambda n: [0.5]  # the analysis fails: roll back
    spec = rollout(
        [{"setWeight": 20}, {"analysis": {"templates": [{"templateName": "error-rate"}]}}]
    )
    tq = f"tq-{uuid.uuid4().hex}"
    async with workflows_only(env, tq), activities_only(env, tq, stubs):
        handle = await env.client.start_workflow(
            CanaryRollout.run, spec, id=spec.workflow_id, task_queue=tq
        )
        status = await wait_for_status(handle, lambda s: "rollback attempt 3 failed" in s.message)
        assert (await handle.describe()).status is WorkflowExecutionStatus.RUNNING
        failing[0] = False
        await handle.result()
    return handle, stubs, status


async def test_a_rollback_that_fails_keeps_the_run_open_until_it_succeeds(temporal_env):
    handle, stubs, failing = await rollback_failing_three_times(temporal_env)
    assert failing.phase is RolloutPhase.ROLLING_BACK
    assert "(RouterConfigRejected); retrying in" in failing.message
    result: RolloutResult = await handle.result()
    assert result.outcome is RolloutPhase.ROLLED_BACK
    assert stubs.canary_weights == [20, 0]
    assert result.weights == Weights(stable=100, canary=0)
    await assert_replays(handle)


@asynccontextmanager
async def under_test(
    env: WorkflowEnvironment, stubs: Stubs, spec: Rollout
) -> AsyncIterator[WorkflowHandle[Any, Any]]:
    """``spec`` started on ``CanaryUnderTest``, with a worker running it."""
    async with worker(env, [CanaryUnderTest], stubs.activities()) as tq:
        yield await env.client.start_workflow(
            CanaryUnderTest.run, spec, id=spec.workflow_id, task_queue=tq
        )


@workflow.defn(name="CanaryRollout", sandboxed=False)  # the sandbox would re-import this file
class CanaryUnderTest(CanaryRollout):
    """The real canary, continuing as new after 80 events instead of 10,000, and with a
    programming error in the step that a ``bug-at-step`` label names."""

    HISTORY_EVENTS_PER_RUN = 80

    @workflow.init
    def __init__(self, rollout: Rollout) -> None:
        super().__init__(rollout)

    @workflow.run
    async def run(self, rollout: Rollout) -> RolloutResult:
        return await super().run(rollout)

    async def _run_step(self, index: int, step: CanaryStep) -> None:
        if self._rollout.metadata.labels.get("bug-at-step") == str(index):
            raise KeyError(f"steps[{index}]")
        await super()._run_step(index, step)


async def test_a_bug_in_a_step_rolls_back_instead_of_leaving_traffic_split(temporal_env):
    stubs = Stubs()
    spec = rollout([{"setWeight": 20}, {"pause": {"duration": "1m"}}, {"setWeight": 50}])
    spec = spec.model_copy(
        update={"metadata": Metadata(name="checkout", labels={"bug-at-step": "2"})}
    )
    async with under_test(temporal_env, stubs, spec) as handle:
        # Before the fix the workflow task failed and was retried forever.
        result: RolloutResult = await asyncio.wait_for(handle.result(), 30)
    assert result.outcome is RolloutPhase.ROLLED_BACK
    assert result.reason == "failed: 'steps[2]' (KeyError)"
    assert stubs.canary_weights == [20, 0]
    await assert_replays(handle, CanaryUnderTest)


async def test_a_long_soak_with_background_analysis_continues_as_new_and_keeps_counting(
    temporal_env,
):
    stubs = Stubs()
    background = {
        "name": "bg",
        "metrics": [
            {
                "name": "error-rate",
                "interval": "5m",  # no count: measures until the rollout ends
                "successCondition": "result < 0.01",
                "provider": {"prometheus": {"address": "http://127.0.0.1:9", "query": "q"}},
            }
        ],
    }
    spec = rollout(
        [{"setWeight": 20}, {"pause": {"duration": "2h"}}, {"setWeight": 50}, {"pause": {}}],
        canary={"analysis": {"templates": [{"templateName": "bg"}], "startingStep": 1}},
        analysisTemplates=[background],
    )
    async with under_test(temporal_env, stubs, spec) as first:
        latest = temporal_env.client.get_workflow_handle_for(CanaryRollout.run, spec.workflow_id)
        status = await wait_for_status(
            latest, lambda s: s.current_step == 3 and s.phase is RolloutPhase.PAUSED, timeout=60
        )
        runs = [e for e in status.events if e.kind == "continued"]
        assert len(runs) >= 2  # 2 h of 5 min measurements do not fit in 80 events
        # One background analysis across every run, counting on: each measurement made is
        # counted once (one per hand-over may be cancelled in flight, and made again).
        metric = status.analysis_runs[0].metrics[0]
        assert len(status.analysis_runs) == 1
        assert stubs.measurements - len(runs) <= metric.count <= stubs.measurements
        assert metric.count > 12  # more than one run's worth (about 9)
        assert stubs.canary_weights == [20, 50]  # no step ran twice
        pause, after = (
            next(e.at for e in status.events if e.message == message)
            for message in ("step 1: pause 2h", "step 2: setWeight 50")
        )
        assert after - pause >= timedelta(hours=2)
        assert (await latest.describe()).run_id != first.result_run_id
        await latest.execute_update(CanaryRollout.promote, OperatorInput())
        result = await latest.result(rpc_timeout=timedelta(seconds=30))
    assert result.outcome is RolloutPhase.PROMOTED
    assert stubs.canary_weights == [20, 50, 100]
    await assert_replays(latest, CanaryUnderTest)
    async for run in temporal_env.client.list_workflows(f"WorkflowId = '{spec.workflow_id}'"):
        assert run.history_length is None or run.history_length < 200
