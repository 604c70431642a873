"""PromotionPipeline with real child CanaryRollouts on stub activities, time skipping."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from tests.workflows.harness import ERROR_RATE_TEMPLATE, Stubs, wait_for_status
from workflows.pipeline import PromotionPipeline
from workflows.pipeline_models import (
    ApprovalInput,
    PipelineOutcome,
    PipelineRequest,
    PipelineResult,
    PipelineStatus,
    Submission,
)
from workflows.pipeline_spec import parse_pipeline
from workflows.registry import BY_STRATEGY
from workflows.rollout_models import OperatorInput

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


def pipeline(*stages: dict[str, Any], policy: str = "supersede") -> Any:
    service = f"svc-{uuid.uuid4().hex[:8]}"
    return parse_pipeline(
        {
            "apiVersion": "deployflow/v1",
            "kind": "Pipeline",
            "metadata": {"name": service},
            "spec": {"service": service, "policy": policy, "stages": list(stages)},
        }
    )


APPROVAL = {"approval": {"approvers": ["alice", "bob"], "minApprovals": 1}}


@asynccontextmanager
async def pipeline_worker(env: WorkflowEnvironment, stubs: Stubs) -> AsyncIterator[str]:
    task_queue = f"tq-{uuid.uuid4().hex}"
    async with Worker(
        env.client,
        task_queue=task_queue,
        workflows=[PromotionPipeline, *BY_STRATEGY.values()],
        activities=stubs.activities(),
    ):
        yield task_queue


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
    import asyncio

    async with asyncio.timeout(20):
        while True:
            status: PipelineStatus = await handle.query(PromotionPipeline.status)
            if predicate(status):
                return status
            await asyncio.sleep(0.05)


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
        await handle.signal(PromotionPipeline.submit, Submission(version="v3"))
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
        await handle.signal(PromotionPipeline.submit, Submission(version="v3"))
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
