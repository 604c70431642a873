"""CanaryRollout on a real dev server with time skipping; activities stubbed by name."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError, CancelledError

from starters.errors import Conflict
from starters.rollouts import send_verb
from tests.workflows.harness import Stubs, canary_worker, rollout, start, wait_for_status
from workflows.core.verbs import OperatorInput
from workflows.rollouts.canary import CanaryRollout
from workflows.rollouts.models import RolloutPhase

SOAK = {"pause": {"duration": "30m"}}
ANALYSIS = {"analysis": {"templates": [{"templateName": "error-rate"}]}}


def in_pause_step(status) -> bool:
    return status.phase is RolloutPhase.PAUSED and (status.step or "").startswith("pause")


async def test_two_hour_canary_with_30_minute_soaks_finishes_in_seconds(temporal_env):
    stubs = Stubs()
    spec = rollout(
        [
            {"setWeight": 5},
            SOAK,
            {"setWeight": 25},
            SOAK,
            {"setWeight": 50},
            SOAK,
            {"setWeight": 100},
            SOAK,
        ],
    )
    async with canary_worker(temporal_env, stubs) as tq:
        handle = await start(temporal_env, tq, spec)
        result = await handle.result()
    assert result.outcome is RolloutPhase.PROMOTED
    assert stubs.canary_weights == [5, 25, 50, 100, 100]
    elapsed = result.events[-1].at - result.events[0].at
    assert elapsed >= timedelta(hours=2)


async def test_failed_analysis_rolls_back_to_stable(temporal_env):
    stubs = Stubs(measure_values=lambda n: [0.002] if n == 1 else [0.2])
    spec = rollout([{"setWeight": 20}, ANALYSIS, {"setWeight": 100}])
    async with canary_worker(temporal_env, stubs) as tq:
        result = await (await start(temporal_env, tq, spec)).result()
    assert result.outcome is RolloutPhase.ROLLED_BACK
    assert "analysis step-1 Failed" in result.reason
    assert stubs.canary_weights == [20, 0]
    metric = result.analysis_runs[0].metrics[0]
    assert (metric.count, metric.successful, metric.failed) == (2, 1, 1)
    assert stubs.measure_keys[0].endswith("/step-1/error-rate/1")


async def test_background_analysis_failure_interrupts_a_soak(temporal_env):
    stubs = Stubs(measure_values=lambda n: [0.0] if n < 3 else [0.5])
    spec = rollout(
        [{"setWeight": 10}, SOAK, {"setWeight": 50}, SOAK],
        canary={"analysis": {"templates": [{"templateName": "error-rate"}], "startingStep": 1}},
    )
    async with canary_worker(temporal_env, stubs) as tq:
        result = await (await start(temporal_env, tq, spec)).result()
    assert result.outcome is RolloutPhase.ROLLED_BACK
    assert result.reason.startswith("analysis background Failed")
    assert stubs.canary_weights == [10, 0]


async def test_inconclusive_analysis_pauses_until_promoted(temporal_env):
    stubs = Stubs(measure_values=lambda n: [0.05])
    template = {
        "name": "error-rate",
        "metrics": [
            {
                "name": "error-rate",
                "successCondition": "result < 0.01",
                "failureCondition": "result > 0.1",
                "provider": {"prometheus": {"address": "http://127.0.0.1:9", "query": "q"}},
            }
        ],
    }
    spec = rollout([{"setWeight": 20}, ANALYSIS, {"setWeight": 60}], analysisTemplates=[template])
    async with canary_worker(temporal_env, stubs) as tq:
        handle = await start(temporal_env, tq, spec)
        status = await wait_for_status(handle, lambda s: s.paused_reason is not None)
        assert status.phase is RolloutPhase.PAUSED
        assert "inconclusive" in status.paused_reason
        assert stubs.canary_weights == [20]
        await handle.execute_update(CanaryRollout.promote, OperatorInput(by="alice"))
        result = await handle.result()
    assert result.outcome is RolloutPhase.PROMOTED
    assert stubs.canary_weights == [20, 60, 100]


async def test_abort_during_a_soak_rolls_back(temporal_env):
    stubs = Stubs()
    spec = rollout([{"setWeight": 25}, SOAK, {"setWeight": 100}])
    async with canary_worker(temporal_env, stubs) as tq:
        with temporal_env.with_time_skipping_disabled():
            handle = await start(temporal_env, tq, spec)
        await wait_for_status(handle, in_pause_step)
        message = await handle.execute_update(
            CanaryRollout.abort, OperatorInput(reason="bad dashboards", by="bob")
        )
        result = await handle.result()
    assert "aborting" in message
    assert result.outcome is RolloutPhase.ABORTED
    assert result.reason == "aborted by bob: bad dashboards"
    assert stubs.canary_weights == [25, 0]
    assert result.weights.stable == 100


async def test_promote_full_skips_remaining_steps(temporal_env):
    stubs = Stubs()
    spec = rollout([{"setWeight": 10}, {"pause": {}}, {"setWeight": 50}, ANALYSIS, {"pause": {}}])
    async with canary_worker(temporal_env, stubs) as tq:
        handle = await start(temporal_env, tq, spec)
        await wait_for_status(handle, in_pause_step)
        await handle.execute_update(CanaryRollout.promote_full, OperatorInput())
        result = await handle.result()
    assert result.outcome is RolloutPhase.PROMOTED
    assert stubs.canary_weights == [10, 100]
    assert stubs.measurements == 0


async def test_pause_holds_the_next_step_until_resumed(temporal_env):
    stubs = Stubs()
    spec = rollout([{"setWeight": 10}, {"pause": {}}, {"setWeight": 50}, {"pause": {}}])
    async with canary_worker(temporal_env, stubs) as tq:
        handle = await start(temporal_env, tq, spec)
        await wait_for_status(handle, in_pause_step)
        await handle.execute_update(CanaryRollout.pause, OperatorInput(reason="lunch"))
        await handle.execute_update(CanaryRollout.resume, OperatorInput())
        # Still in the indefinite pause step: resume lifts the hold, not the step.
        status = await wait_for_status(handle, in_pause_step)
        assert status.current_step == 1
        await handle.execute_update(CanaryRollout.pause, OperatorInput(reason="hold on"))
        await handle.execute_update(CanaryRollout.promote, OperatorInput())
        status = await wait_for_status(handle, lambda s: s.current_step == 3)
        assert stubs.canary_weights == [10, 50]
        await handle.execute_update(CanaryRollout.promote, OperatorInput())
        result = await handle.result()
    assert result.outcome is RolloutPhase.PROMOTED
    kinds = [e.kind for e in result.events]
    assert kinds.count("pause") == 2
    assert kinds.count("resume") == 1


async def test_operator_pause_stops_progress_after_a_timed_pause(temporal_env):
    stubs = Stubs()
    spec = rollout([{"setWeight": 10}, SOAK, {"setWeight": 50}])
    async with canary_worker(temporal_env, stubs) as tq:
        with temporal_env.with_time_skipping_disabled():
            handle = await start(temporal_env, tq, spec)
        await wait_for_status(handle, in_pause_step)
        await handle.execute_update(CanaryRollout.pause, OperatorInput(reason="investigating"))
        await temporal_env.fast_forward(handle, timedelta(minutes=31))
        status = await wait_for_status(
            handle, lambda s: any("elapsed" in e.message for e in s.events)
        )
        assert status.phase is RolloutPhase.PAUSED
        assert stubs.canary_weights == [10]
        await handle.execute_update(CanaryRollout.resume, OperatorInput())
        result = await handle.result()
    assert result.outcome is RolloutPhase.PROMOTED
    assert stubs.canary_weights == [10, 50, 100]


async def test_rejected_verb_leaves_no_trace_in_history(temporal_env):
    stubs = Stubs()
    spec = rollout([{"setWeight": 10}, {"pause": {}}, {"setWeight": 100}])
    async with canary_worker(temporal_env, stubs) as tq:
        handle = await start(temporal_env, tq, spec)
        await wait_for_status(handle, in_pause_step)
        before = [e async for e in handle.fetch_history_events()]
        with pytest.raises(WorkflowUpdateFailedError) as rejected:
            await handle.execute_update(CanaryRollout.resume, OperatorInput())
        assert "not paused" in str(rejected.value.cause)
        after = [e async for e in handle.fetch_history_events()]
        assert len(after) == len(before)
        await handle.execute_update(CanaryRollout.promote, OperatorInput())
        await handle.result()
    update_events = {
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED,
    }
    history = [e async for e in handle.fetch_history_events()]
    assert sum(e.event_type in update_events for e in history) == 2  # the promote only


async def test_signals_steer_too_and_invalid_ones_are_noted(temporal_env):
    stubs = Stubs()
    spec = rollout([{"setWeight": 10}, {"pause": {}}, {"setWeight": 100}])
    async with canary_worker(temporal_env, stubs) as tq:
        handle = await start(temporal_env, tq, spec)
        await wait_for_status(handle, in_pause_step)
        await handle.signal("resume", OperatorInput())
        await handle.signal("promote", OperatorInput(by="carol"))
        result = await handle.result()
    assert result.outcome is RolloutPhase.PROMOTED
    messages = [e.message for e in result.events]
    assert any(m.startswith("signal resume ignored: not paused") for m in messages)
    assert "promoted by carol" in messages


async def test_cancellation_rolls_back(temporal_env):
    stubs = Stubs()
    spec = rollout([{"setWeight": 30}, SOAK, {"setWeight": 100}])
    async with canary_worker(temporal_env, stubs) as tq:
        with temporal_env.with_time_skipping_disabled():
            handle = await start(temporal_env, tq, spec)
        await wait_for_status(handle, in_pause_step)
        await handle.cancel()
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
    assert isinstance(failure.value.cause, CancelledError)
    assert stubs.canary_weights == [30, 0]


async def test_missed_progress_deadline_rolls_back(temporal_env):
    slow = {
        "name": "error-rate",
        "metrics": [
            {
                "name": "error-rate",
                "interval": "1m",
                "count": 30,
                "successCondition": "result < 0.01",
                "provider": {"prometheus": {"address": "http://127.0.0.1:9", "query": "q"}},
            }
        ],
    }
    stubs = Stubs()
    spec = rollout(
        [{"setWeight": 10}, ANALYSIS, {"setWeight": 100}],
        analysisTemplates=[slow],
        progressDeadlineSeconds=600,
    )
    async with canary_worker(temporal_env, stubs) as tq:
        result = await (await start(temporal_env, tq, spec)).result()
    assert result.outcome is RolloutPhase.ROLLED_BACK
    assert result.reason.startswith("progress deadline of 600s exceeded at step 1")
    assert stubs.canary_weights == [10, 0]
    assert 9 <= stubs.measurements <= 12


async def test_second_verb_after_abort_is_rejected(temporal_env):
    """The rollback's weight change is held, so the run is still open (rolling back) when
    promote arrives (without it, a fast rollback closes the run first): refused as the CLI
    and the API answer it, a Conflict."""
    stubs = Stubs(hold_key="/rollback")
    spec = rollout([{"setWeight": 10}, {"pause": {}}])
    async with canary_worker(temporal_env, stubs) as tq:
        handle = await start(temporal_env, tq, spec)
        await wait_for_status(handle, in_pause_step)
        await handle.execute_update(CanaryRollout.abort, OperatorInput())
        await asyncio.wait_for(stubs.held.wait(), 15)
        with pytest.raises(Conflict, match=r"^promote rejected: "):
            await send_verb(handle, "promote", {"by": "bob"})
        stubs.release.set()
        result = await handle.result()
    assert result.outcome is RolloutPhase.ABORTED
    assert stubs.canary_weights == [10, 0]


async def test_a_spec_the_ui_started_unchecked_is_refused_before_any_change(temporal_env):
    stubs = Stubs()
    sound = rollout([{"setWeight": 50}], canary={"analysis": ANALYSIS["analysis"]})
    canary = sound.spec.strategy.canary
    assert canary is not None
    assert canary.analysis is not None
    # As the Temporal UI can send it: past the last step, which parse_rollout refuses.
    past = canary.analysis.model_copy(update={"starting_step": 5})
    strategy = sound.spec.strategy.model_copy(
        update={"canary": canary.model_copy(update={"analysis": past})}
    )
    spec = sound.model_copy(update={"spec": sound.spec.model_copy(update={"strategy": strategy})})
    async with canary_worker(temporal_env, stubs) as tq:
        handle = await start(temporal_env, tq, spec)
        with pytest.raises(WorkflowFailureError) as failed:
            await handle.result()
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == "InvalidSpec"
    assert cause.non_retryable
    assert cause.message.startswith(
        "invalid rollout spec:\nspec.strategy.canary.analysis.startingStep: 5 is past the last"
    )
    assert stubs.canary_weights == []
