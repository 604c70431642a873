"""PromotionPipeline with real child CanaryRollouts on stub activities, time skipping."""

from __future__ import annotations

import asyncio
import uuid
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from activities.metrics.activities import MeasureInput, MeasureOutput
from activities.routing.base import Weights
from activities.routing.models import SetWeightInput
from tests.fixtures.harness import poll, queried, worker
from tests.workflows.harness import ERROR_RATE_TEMPLATE, Stubs, wait_for_status
from workflows.core.verbs import OperatorInput
from workflows.promotion.models import (
    ApprovalInput,
    PipelineOutcome,
    PipelineRequest,
    PipelineResult,
    PipelineStatus,
    Submission,
)
from workflows.promotion.pipeline import PromotionPipeline
from workflows.promotion.spec import parse_pipeline
from workflows.rollouts.canary import CanaryRollout
from workflows.rollouts.models import RolloutStatus
from workflows.rollouts.registry import BY_STRATEGY

ANALYSIS = {"analysis": {"templates": [{"templateName": "error-rate"}]}}


def stage(
    environment: str, steps: list[dict[str, Any]] | None = None, **gates: Any
) -> dict[str, Any]:
    rollout = {
        "router": {
            "nginx": {
                "upstream": "app",
                "configPath": f"/nonexistent/{environment}-upstream.conf",
                "stable": ["127.0.0.1:1"],
                "canary": ["127.0.0.1:2"],
            }
        },
        "strategy": {"canary": {"steps": steps or [{"setWeight": 50}, {"setWeight": 100}]}},
        "analysisTemplates": [ERROR_RATE_TEMPLATE],
    }
    return {"environment": environment, "rollout": rollout, **gates}


def pipeline(
    *stages: dict[str, Any], policy: str = "supersede", service: str = "", **spec: Any
) -> Any:
    """A Pipeline of ``stages`` for ``service`` (a fresh name if not given); ``spec`` adds
    to its spec (``notifications``)."""
    service = service or f"svc-{uuid.uuid4().hex[:8]}"
    return parse_pipeline(
        {
            "apiVersion": "deployflow/v1",
            "kind": "Pipeline",
            "metadata": {"name": service},
            "spec": {"service": service, "policy": policy, "stages": list(stages), **spec},
        }
    )


APPROVAL = {"approval": {"approvers": ["alice", "bob"], "minApprovals": 1}}


def pipeline_worker(env: WorkflowEnvironment, stubs: Stubs) -> AbstractAsyncContextManager[str]:
    return worker(env, [PromotionPipeline, *BY_STRATEGY.values()], stubs.activities())


async def start(
    env: WorkflowEnvironment, tq: str, p: Any, version: str = "v2"
) -> WorkflowHandle[Any, Any]:
    return await env.client.start_workflow(
        PromotionPipeline.run,
        PipelineRequest(pipeline=p, version=version),
        id=p.workflow_id,
        task_queue=tq,
    )


async def status_when(handle: WorkflowHandle[Any, Any], predicate: Any) -> PipelineStatus:
    return await queried(handle, PromotionPipeline.status, predicate, "the pipeline's status", 20)


def at_gate(environment: str) -> Any:
    return lambda s: any(
        st.environment == environment and st.state == "awaiting-approval" for st in s.stages
    )


def approve(handle: WorkflowHandle[Any, Any], who: str, **kw: Any) -> Any:
    return handle.execute_update(PromotionPipeline.approve, ApprovalInput(approver=who, **kw))


async def test_three_environments_with_soak_and_approval(temporal_env):
    stubs = Stubs()
    p = pipeline(
        stage("dev"),
        stage("staging", requiredSoakTime="1h"),
        stage("production", requiredSoakTime="30m", **APPROVAL),
    )
    async with pipeline_worker(temporal_env, stubs) as tq:
        handle = await start(temporal_env, tq, p)
        status = await status_when(handle, at_gate("production"))
        assert [s.state for s in status.stages] == ["succeeded", "succeeded", "awaiting-approval"]
        assert status.stages[2].approvers == ["alice", "bob"]
        assert status.stages[2].waiting_until is None  # the soak is over
        message = await approve(handle, "alice", comment="looks good")
        result: PipelineResult = await handle.result()
    assert message == "production approved by alice"
    assert result.outcome is PipelineOutcome.SUCCEEDED
    dev, staging, production = result.stages
    assert dev.live_since is not None
    assert staging.live_since is not None
    assert production.live_since is not None
    assert staging.live_since - dev.live_since >= timedelta(hours=1)
    assert production.approvals[0].approver == "alice"
    assert production.rollout_workflow_id == f"rollout-{p.spec.service}-production"
    assert stubs.canary_weights == [50, 100, 100] * 3


async def test_unknown_or_repeated_approvers_are_rejected(temporal_env):
    stubs = Stubs()
    gate = {"approval": {"approvers": ["alice", "bob"], "minApprovals": 2}}
    p = pipeline(
        stage("staging", steps=[{"setWeight": 50}, {"pause": {}}]), stage("production", **gate)
    )
    async with pipeline_worker(temporal_env, stubs) as tq:
        handle = await start(temporal_env, tq, p)
        await status_when(handle, lambda s: s.stages[0].state == "rolling-out")
        with pytest.raises(WorkflowUpdateFailedError) as closed:
            await approve(handle, "alice")
        assert "no approval gate is open" in str(closed.value.cause)
        child = temporal_env.client.get_workflow_handle(f"rollout-{p.spec.service}-staging")
        await wait_for_status(child, lambda s: (s.step or "").startswith("pause"))
        await child.execute_update("promote", OperatorInput(), result_type=str)
        await status_when(handle, at_gate("production"))
        with pytest.raises(WorkflowUpdateFailedError) as unknown:
            await approve(handle, "mallory")
        assert "mallory may not approve production" in str(unknown.value.cause)
        await approve(handle, "alice")
        with pytest.raises(WorkflowUpdateFailedError) as twice:
            await approve(handle, "alice")
        assert "alice already decided" in str(twice.value.cause)
        with pytest.raises(WorkflowUpdateFailedError) as wrong_stage:
            await approve(handle, "bob", stage="staging")
        assert "the open gate is production" in str(wrong_stage.value.cause)
        await approve(handle, "bob")
        result = await handle.result()
    assert result.outcome is PipelineOutcome.SUCCEEDED
    assert [a.approver for a in result.stages[1].approvals] == ["alice", "bob"]


async def test_rejection_stops_the_pipeline(temporal_env):
    stubs = Stubs()
    p = pipeline(stage("staging"), stage("production", **APPROVAL))
    async with pipeline_worker(temporal_env, stubs) as tq:
        handle = await start(temporal_env, tq, p)
        await status_when(handle, at_gate("production"))
        await handle.execute_update(
            PromotionPipeline.reject, ApprovalInput(approver="bob", comment="not on a Friday")
        )
        result = await handle.result()
    assert result.outcome is PipelineOutcome.REJECTED
    assert result.reason == "production rejected by bob: not on a Friday"
    assert stubs.canary_weights == [50, 100, 100]  # staging only


async def test_approval_timeout_reminds_escalates_then_fails(temporal_env):
    stubs = Stubs()
    gate = {
        "approval": {
            "approvers": ["alice"],
            "timeout": "1h",
            "reminderAfter": "30m",
            "escalateTo": ["carol"],
        }
    }
    p = pipeline(stage("staging"), stage("production", **gate))
    async with pipeline_worker(temporal_env, stubs) as tq:
        result = await (await start(temporal_env, tq, p)).result()
    assert result.outcome is PipelineOutcome.FAILED
    assert result.reason == "production: no approval within 1h after escalation"
    kinds = [e.kind for e in result.events]
    assert kinds.index("reminder") < kinds.index("escalated")
    assert result.stages[1].approvers == ["alice", "carol"]


async def test_escalated_approver_can_approve_only_after_escalation(temporal_env):
    stubs = Stubs()
    gate = {"approval": {"approvers": ["alice"], "timeout": "1h", "escalateTo": ["carol"]}}
    p = pipeline(stage("staging"), stage("production", **gate))
    async with pipeline_worker(temporal_env, stubs) as tq:
        with temporal_env.with_time_skipping_disabled():
            handle = await start(temporal_env, tq, p)
        await status_when(handle, at_gate("production"))
        with pytest.raises(WorkflowUpdateFailedError):
            await approve(handle, "carol")
        await temporal_env.fast_forward(handle, timedelta(minutes=61))
        await status_when(handle, lambda s: "carol" in s.stages[1].approvers)
        await approve(handle, "carol")
        result = await handle.result()
    assert result.outcome is PipelineOutcome.SUCCEEDED


async def test_freeze_window_delays_production(temporal_env):
    stubs = Stubs()
    now = datetime.now(UTC)
    freeze = {
        "start": (now - timedelta(hours=1)).isoformat(),
        "end": (now + timedelta(hours=3)).isoformat(),
    }
    p = pipeline(stage("staging"), stage("production", window={"freezes": [freeze]}))
    async with pipeline_worker(temporal_env, stubs) as tq:
        result = await (await start(temporal_env, tq, p)).result()
    assert result.outcome is PipelineOutcome.SUCCEEDED
    waited = next(e for e in result.events if e.kind == "waiting-window")
    rolled = next(e for e in result.events if e.kind == "rolling-out" and "production" in e.message)
    assert "production: outside its window" in waited.message
    assert rolled.at >= now + timedelta(hours=3)


async def test_a_failure_in_staging_never_reaches_production(temporal_env):
    stubs = Stubs(measure_values=lambda n: [0.5])
    p = pipeline(
        stage("dev"),
        stage("staging", steps=[{"setWeight": 20}, ANALYSIS, {"setWeight": 100}]),
        stage("production"),
    )
    async with pipeline_worker(temporal_env, stubs) as tq:
        result = await (await start(temporal_env, tq, p)).result()
    assert result.outcome is PipelineOutcome.FAILED
    assert result.reason.startswith("staging: rollout RolledBack: analysis step-1 Failed")
    assert [s.state for s in result.stages] == ["succeeded", "failed", "pending"]
    assert stubs.canary_weights == [50, 100, 100, 20, 0]


async def test_a_newer_version_supersedes_the_running_one(temporal_env):
    stubs = Stubs()
    p = pipeline(stage("staging"), stage("production", **APPROVAL), policy="supersede")
    async with pipeline_worker(temporal_env, stubs) as tq:
        handle = await start(temporal_env, tq, p, version="v2")
        await status_when(handle, at_gate("production"))
        await handle.signal(PromotionPipeline.submit_signal, Submission(version="v3"))
        latest = temporal_env.client.get_workflow_handle_for(PromotionPipeline.run, p.workflow_id)
        status = await status_when(latest, lambda s: s.version == "v3" and at_gate("production")(s))
        assert status.outcome is PipelineOutcome.RUNNING
        await approve(latest, "alice")
        result = await latest.result()
    assert result.outcome is PipelineOutcome.SUCCEEDED
    assert result.version == "v3"


async def test_queue_policy_runs_the_newer_version_after_the_running_one(temporal_env):
    stubs = Stubs()
    p = pipeline(stage("staging"), stage("production", **APPROVAL), policy="queue")
    async with pipeline_worker(temporal_env, stubs) as tq:
        handle = await start(temporal_env, tq, p, version="v2")
        await status_when(handle, at_gate("production"))
        await handle.signal(PromotionPipeline.submit_signal, Submission(version="v3"))
        status = await status_when(handle, lambda s: s.queued == ["v3"])
        assert status.version == "v2"
        await approve(handle, "alice")
        latest = temporal_env.client.get_workflow_handle_for(PromotionPipeline.run, p.workflow_id)
        await status_when(latest, lambda s: s.version == "v3" and at_gate("production")(s))
        await approve(latest, "bob")
        result = await latest.result()
    assert result.outcome is PipelineOutcome.SUCCEEDED
    assert result.version == "v3"
    # v3 lands on the list v2 left idle in each environment: roles flip.
    assert stubs.canary_weights == [50, 100, 100] * 2 + [50, 0, 0] * 2


@dataclass
class Held:
    """Calls of a stub activity wait here until ``release`` (``reached`` says one came)."""

    armed: bool = True
    reached: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def hold(self) -> None:
        if self.armed and not self.release.is_set():
            self.reached.set()
            await self.release.wait()


def replace_activity(stubs: Stubs, replacement: Any) -> list[Any]:
    """The stubs' activities with the one named like ``replacement`` swapped for it."""
    return [a for a in stubs.activities() if a.__name__ != replacement.__name__] + [replacement]


async def wait_for_event(handle: WorkflowHandle[Any, Any], event_type: Any, after: int) -> None:
    """Poll the history until an event of ``event_type`` follows event ``after`` (bounded)."""

    async def followed() -> bool:
        history = await handle.fetch_history()
        return any(e.event_type == event_type and e.event_id > after for e in history.events)

    await poll(followed, f"a {event_type} after event {after}", 10, every_s=0.05)


def paused(status: RolloutStatus) -> bool:
    return (status.step or "").startswith("pause")


async def rollout_when(env: WorkflowEnvironment, workflow_id: str, predicate: Any) -> None:
    """Poll a stage's rollout (its newest run, which may not have started yet) until
    ``predicate`` holds on its status (bounded)."""
    handle = env.client.get_workflow_handle(workflow_id)
    await queried(handle, CanaryRollout.status, predicate, f"{workflow_id}'s status", 20)


@pytest.mark.parametrize("policy", ["supersede", "queue"])
async def test_a_submit_in_the_same_activation_as_the_last_stage_finishing_runs_next(
    temporal_env, policy
):
    """No workflow worker while the verification's last measurement completes and v3 is
    submitted: the next workflow task delivers both at once."""
    held = Held()
    stubs = Stubs()

    @activity.defn(name="measure")
    async def measure(input: MeasureInput) -> MeasureOutput:
        await held.hold()
        return MeasureOutput(values=[0.0])

    once = {**ERROR_RATE_TEMPLATE, "metrics": [{**ERROR_RATE_TEMPLATE["metrics"][0], "count": 1}]}
    only = stage("dev", verification=ANALYSIS)
    only["rollout"]["analysisTemplates"] = [once]
    p = pipeline(only, policy=policy)
    workflows = [PromotionPipeline, *BY_STRATEGY.values()]
    tq = f"tq-{uuid.uuid4().hex}"
    client = temporal_env.client
    async with worker(client, (), replace_activity(stubs, measure), task_queue=tq):
        async with worker(client, workflows, task_queue=tq, max_cached_workflows=0):
            handle = await start(temporal_env, tq, p, version="v2")
            await asyncio.wait_for(held.reached.wait(), 20)
        await handle.signal(PromotionPipeline.submit_signal, Submission(version="v3"))
        signalled = (await handle.fetch_history()).events[-1].event_id
        held.release.set()
        await wait_for_event(handle, EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED, signalled)
        async with worker(client, workflows, task_queue=tq, max_cached_workflows=0):
            latest = client.get_workflow_handle_for(PromotionPipeline.run, p.workflow_id)
            result: PipelineResult = await asyncio.wait_for(latest.result(), 30)
            first = await client.get_workflow_handle(
                p.workflow_id, run_id=handle.result_run_id
            ).describe()
    assert first.status is WorkflowExecutionStatus.CONTINUED_AS_NEW
    assert result.version == "v3"
    assert result.outcome is PipelineOutcome.SUCCEEDED


@pytest.mark.parametrize("ending", ["rollout ended", "rejected", "timed out"])
async def test_a_submit_in_the_same_activation_as_the_last_stage_ending_runs_next(
    temporal_env, ending
):
    """While no workflow worker runs, the last stage ends — its rollout closes (terminated:
    that needs no worker), its gate is rejected, or the gate's timeout fires — and v3 is
    submitted: the next workflow task has both. v3 runs next, whichever the run saw first."""
    stubs = Stubs()
    if ending == "rollout ended":
        last = stage("production", steps=[{"setWeight": 50}, {"pause": {}}])
    elif ending == "rejected":
        last = stage("production", approval={"approvers": ["alice"]})
    else:
        last = stage("production", approval={"approvers": ["alice"], "timeout": "1h"})
    p = pipeline(stage("staging"), last, policy="supersede")
    workflows = [PromotionPipeline, *BY_STRATEGY.values()]
    tq = f"tq-{uuid.uuid4().hex}"
    client = temporal_env.client
    child_id = f"rollout-{p.spec.service}-production"

    def workflow_worker() -> AbstractAsyncContextManager[str]:
        # No sticky queue: the next task waits for a worker.
        return worker(client, workflows, stubs.activities(), task_queue=tq, max_cached_workflows=0)

    with temporal_env.with_time_skipping_disabled():
        handle = await start(temporal_env, tq, p, version="v2")
    skipping = None
    async with workflow_worker():
        if ending == "rollout ended":
            await rollout_when(temporal_env, child_id, paused)
        else:
            await status_when(handle, at_gate("production"))
    if ending == "rollout ended":
        await client.get_workflow_handle(child_id).terminate("operator")
    elif ending == "rejected":
        await handle.signal(PromotionPipeline.reject_signal, ApprovalInput(approver="alice"))
    else:
        skipping = asyncio.create_task(temporal_env.fast_forward(handle, timedelta(minutes=61)))
        await wait_for_event(handle, EventType.EVENT_TYPE_TIMER_FIRED, 0)
    await handle.signal(PromotionPipeline.submit_signal, Submission(version="v3"))
    async with workflow_worker():
        latest = client.get_workflow_handle_for(PromotionPipeline.run, p.workflow_id)
        await status_when(latest, lambda s: s.version == "v3")
        first = client.get_workflow_handle(p.workflow_id, run_id=handle.result_run_id)
        ended: PipelineStatus = await first.query(PromotionPipeline.status)
        closed = (await first.describe()).status
        await latest.cancel()
        if skipping is not None:
            await skipping
    assert closed is WorkflowExecutionStatus.CONTINUED_AS_NEW
    stage_ending = PipelineOutcome.REJECTED if ending == "rejected" else PipelineOutcome.FAILED
    assert ended.outcome in (PipelineOutcome.SUPERSEDED, stage_ending)


async def test_a_version_submitted_while_a_superseded_run_winds_down_runs_instead(temporal_env):
    """v3 supersedes v2; while v2's rollout rolls back, v4 arrives: v4 runs, v3 is dropped
    and both submitters are told."""
    held = Held(armed=False)
    stubs = Stubs()
    stub_set_weight = next(a for a in stubs.activities() if a.__name__ == "set_weight")

    @activity.defn(name="set_weight")
    async def set_weight(input: SetWeightInput) -> Weights:
        if input.weights.canary == 0:  # the superseded rollout rolling back
            await held.hold()
        result: Weights = await stub_set_weight(input)
        return result

    p = pipeline(stage("staging", steps=[{"setWeight": 50}, {"pause": {}}]), policy="supersede")
    child_id = f"rollout-{p.spec.service}-staging"
    tq = f"tq-{uuid.uuid4().hex}"
    async with worker(
        temporal_env,
        [PromotionPipeline, *BY_STRATEGY.values()],
        replace_activity(stubs, set_weight),
        task_queue=tq,
    ):
        handle = await start(temporal_env, tq, p, version="v2")
        await rollout_when(temporal_env, child_id, lambda s: s.version == "v2" and paused(s))
        held.armed = True
        v3 = await handle.execute_update(PromotionPipeline.submit, Submission(version="v3"))
        await asyncio.wait_for(held.reached.wait(), 20)
        v4 = await handle.execute_update(
            PromotionPipeline.submit, Submission(version="v4", by="carol")
        )
        held.release.set()
        latest = temporal_env.client.get_workflow_handle_for(PromotionPipeline.run, p.workflow_id)
        await rollout_when(temporal_env, child_id, lambda s: s.version == "v4" and paused(s))
        first = temporal_env.client.get_workflow_handle(p.workflow_id, run_id=handle.result_run_id)
        superseded: PipelineStatus = await first.query(PromotionPipeline.status)
        await temporal_env.client.get_workflow_handle(child_id).execute_update(
            "promote", OperatorInput(), result_type=str
        )
        result: PipelineResult = await latest.result()
    assert v3 == "v3 supersedes v2: its current stage is cancelled"
    assert v4 == "v4 supersedes v3, which had not started"
    events = [(e.kind, e.message) for e in superseded.events]
    assert ("dropped", "v3 will not run: v4 superseded it before it started") in events
    assert ("superseded", "v4 supersedes v3 (by carol)") in events
    assert superseded.outcome is PipelineOutcome.SUPERSEDED
    assert result.version == "v4"
    assert result.outcome is PipelineOutcome.SUCCEEDED
