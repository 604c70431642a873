"""Record ``canary-notified-rolled-back``: a canary with notifications and a rollback
incident (paused, promoted, failed analysis, rolled back, incident opened). The notify and
incident activities are stubbed by name; only their results go into the history.

    .venv/bin/python -m tests.workflows.record_notify_history
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

from temporalio import activity
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from activities.notify.models import SlackMessage
from activities.notify.rollout_models import SlackNoticeInput, WebhookNoticeInput
from tests.fixtures.harness import worker
from tests.workflows.harness import Stubs, rollout, start, wait_for_status
from tests.workflows.test_pipeline import at_gate, stage, status_when
from tests.workflows.test_pipeline import pipeline as pipeline_of
from workflows.core.search_attributes import ALL
from workflows.core.verbs import OperatorInput
from workflows.notifications.spec import RollbackIncidentInput
from workflows.promotion.models import ApprovalInput, PipelineOutcome, PipelineRequest
from workflows.promotion.pipeline import PromotionPipeline
from workflows.rollouts.canary import CanaryRollout
from workflows.rollouts.models import RolloutPhase
from workflows.rollouts.registry import BY_STRATEGY

NAME = "canary-notified-rolled-back"


@activity.defn(name="notify_slack")
async def notify_slack(input: SlackNoticeInput) -> SlackMessage:
    root = input.root or SlackMessage(channel="C00000001", ts="1764633600.000100")
    if input.part == "reply":
        return SlackMessage(channel=root.channel, ts=f"1764633600.{input.notice.seq:06d}")
    return root


@activity.defn(name="notify_webhook")
async def notify_webhook(input: WebhookNoticeInput) -> int:
    return 200


@activity.defn(name="open_rollout_incident")
async def open_rollout_incident(input: RollbackIncidentInput) -> str:
    return "incident incident-RolloutRolledBack-0 opened for the rollback"


async def record(env: WorkflowEnvironment, save: Callable[[str, WorkflowHistory], None]) -> None:
    spec = rollout(
        [
            {"setWeight": 20},
            {"pause": {}},
            {"analysis": {"templates": [{"templateName": "error-rate"}]}},
        ],
        notifications={
            "slack": {"channel": "#deploys"},
            "webhooks": [{"url": "http://127.0.0.1:9/hooks", "secretEnv": "DEPLOY_WEBHOOK_SECRET"}],
        },
        onRollback={"incident": {"labels": {"team": "payments"}}},
    )
    stubs = Stubs(measure_values=lambda n: [0.5])
    queue = f"tq-{uuid.uuid4().hex}"
    async with worker(
        env,
        [CanaryRollout],
        [*stubs.activities(), notify_slack, notify_webhook, open_rollout_incident],
        task_queue=queue,
    ):
        handle = await start(env, queue, spec)
        await wait_for_status(handle, lambda s: s.phase is RolloutPhase.PAUSED)
        await handle.execute_update(CanaryRollout.promote, OperatorInput(by="alice"))
        result = await handle.result()
        assert result.outcome is RolloutPhase.ROLLED_BACK, result.reason
        assert any(e.kind == "incident" for e in result.events)
        save(NAME, await handle.fetch_history())


async def record_pipeline(
    env: WorkflowEnvironment, save: Callable[[str, WorkflowHistory], None]
) -> None:
    """``pipeline-notified-succeeded``: a pipeline thread with a gate approved."""
    pipeline = pipeline_of(
        stage("staging"),
        stage("production", approval={"approvers": ["alice"]}),
        notifications={"slack": {"channel": "#deploys"}},
    )
    queue = f"tq-{uuid.uuid4().hex}"
    async with worker(
        env,
        [PromotionPipeline, *BY_STRATEGY.values()],
        [*Stubs().activities(), notify_slack, notify_webhook],
        task_queue=queue,
    ):
        handle = await env.client.start_workflow(
            PromotionPipeline.run,
            PipelineRequest(pipeline=pipeline, version="v2"),
            id=pipeline.workflow_id,
            task_queue=queue,
        )
        await status_when(handle, at_gate("production"))
        await handle.execute_update(PromotionPipeline.approve, ApprovalInput(approver="alice"))
        result = await handle.result()
        assert result.outcome is PipelineOutcome.SUCCEEDED, result.reason
        save("pipeline-notified-succeeded", await handle.fetch_history())


async def main() -> None:
    from tests.workflows.record_histories import save

    env = await WorkflowEnvironment.start_time_skipping_v2(
        dev_server_existing_path=str(Path(sys.executable).parent / "temporal"),
        dev_server_extra_args=[
            "--dynamic-config-value",
            "frontend.WorkflowTimeSkippingEnabled=true",
        ],
        search_attributes=list(ALL),
        data_converter=pydantic_data_converter,
    )
    async with env:
        await record(env, save)
        await record_pipeline(env, save)


if __name__ == "__main__":
    asyncio.run(main())
