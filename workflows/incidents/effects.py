"""Workflow-side calls an incident makes to the outside world: pages, Slack posts,
diagnostic queries, restarts and rollbacks. Each schedules one activity by name with the
options that suit it; a failure comes back as a message for the timeline, never as an
exception, because an incident must keep going when one remediation fails.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError, ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from activities.errors import root_cause
    from activities.metrics.activities import MeasureInput, MeasureOutput, MetricProviderSpec
    from activities.notify.models import Link, PageInput, PageResult, SlackMessage, SlackPostInput
    from activities.platforms.base import ActionResult
    from activities.platforms.models import PlatformActionInput, RestartInput, WorkloadState
    from activities.platforms.spec import KubernetesPlatformSpec, PlatformSpec
    from workflows.core import retry
    from workflows.core.timeouts import (
        KUBERNETES_HEARTBEAT,
        KUBERNETES_WAIT_SLACK,
        WORKFLOW_TASK_TIMEOUT,
    )
    from workflows.core.waits import Closed, child_or_running
    from workflows.rollouts.emergency_models import (
        PlanRollbackInput,
        RollbackRequest,
        RollbackResult,
        rollback_workflow_id,
    )

T = TypeVar("T")

# ``measure`` and ``await_closed`` were retried for ever, so their failure never reached the
# workflow; since this patch it is an EffectFailed like every other effect's.
BOUNDED_EFFECTS = "incident-bounded-effects"


class EffectFailed(Exception):
    """An effect did not happen; ``message`` says why, for the timeline."""


async def _effect(
    name: str, arg: Any, result_type: type[T], *, since: str | None = None, **options: Any
) -> T:
    """Run activity ``name``; its failure becomes ``EffectFailed`` (see ``_failing_as_effect``)."""
    with _failing_as_effect(since):
        result: T = await workflow.execute_activity(name, arg, result_type=result_type, **options)
    return result


@contextmanager
def _failing_as_effect(since: str | None = None) -> Iterator[None]:
    """An activity failing inside becomes ``EffectFailed`` with the cause's message (only
    from patch ``since`` on, when one is named: before it the failure propagated)."""
    try:
        yield
    except ActivityError as exc:
        if since is not None and not workflow.patched(since):
            raise
        raise EffectFailed(str(root_cause(exc))) from None


async def page(
    action: str,
    dedup_key: str,
    routing_key_env: str,
    *,
    level: str,
    summary: str = "",
    severity: str = "critical",
    source: str = "deployflow",
    details: Mapping[str, Any] | None = None,
    links: list[Link] | None = None,
) -> PageResult:
    """One PagerDuty Events v2 event (trigger, acknowledge or resolve) for escalation
    ``level`` (named in the activity's summary)."""
    request = PageInput.model_validate(
        {
            "action": action,
            "dedupKey": dedup_key,
            "routingKeyEnv": routing_key_env,
            "summary": summary,
            "severity": severity,
            "source": source,
            "component": source,
            "customDetails": dict(details or {}),
            "links": links or [],
        }
    )
    return await _effect(
        "page",
        request,
        PageResult,
        start_to_close_timeout=timedelta(seconds=30),
        schedule_to_close_timeout=retry.NOTIFY_DEADLINE,
        retry_policy=retry.NOTIFY,
        summary=f"page {level}" if action == "trigger" else f"{action} the page of {level}",
    )


async def post(
    channel: str,
    text: str,
    token_env: str,
    *,
    thread_ts: str | None = None,
    update_ts: str | None = None,
) -> SlackMessage:
    """Post to Slack (in a thread when ``thread_ts``), or edit the message ``update_ts``."""
    request = SlackPostInput(
        channel=channel, text=text, thread_ts=thread_ts, update_ts=update_ts, token_env=token_env
    )
    return await _effect(
        "post_slack",
        request,
        SlackMessage,
        start_to_close_timeout=timedelta(seconds=60),
        schedule_to_close_timeout=retry.NOTIFY_DEADLINE,
        heartbeat_timeout=timedelta(seconds=30),
        retry_policy=retry.NOTIFY,
        summary=(
            f"edit the Slack message in {channel}"
            if update_ts
            else "reply in the Slack thread"
            if thread_ts
            else f"post to {channel}"
        ),
    )


async def measure(
    name: str, provider: MetricProviderSpec, key: str, summary: str | None = None
) -> list[float]:
    """The query's values (one per series); no data or a provider error raise."""
    output = await _effect(
        "measure",
        MeasureInput(metric=name, provider=provider, key=key),
        MeasureOutput,
        since=BOUNDED_EFFECTS,
        start_to_close_timeout=timedelta(seconds=30),
        retry_policy=retry.MEASURE,
        summary=summary or f"measure {name}",
    )
    if output.error is not None:
        raise EffectFailed(output.error)
    return output.values


async def restart(platform: PlatformSpec, service: str, server: str, key: str) -> ActionResult:
    return await _effect(
        "platform_action",
        PlatformActionInput(
            platform=platform, action="restart", target=server, service=service, key=key
        ),
        ActionResult,
        start_to_close_timeout=timedelta(minutes=10),
        heartbeat_timeout=timedelta(seconds=30),
        retry_policy=retry.PLATFORM,
        summary=f"restart {service} on {server}",
    )


async def restart_deployment(platform: KubernetesPlatformSpec, key: str) -> WorkloadState:
    """``kubectl rollout restart`` of the team's Deployment, stamped with the workflow's
    clock (a retry is a no-op), waited for."""
    deployment = platform.deployment
    deadline = deployment.progress_deadline_seconds or 600
    return await _effect(
        "restart_workload",
        RestartInput(platform=platform, workload="stable", at=workflow.now().isoformat(), key=key),
        WorkloadState,
        start_to_close_timeout=timedelta(seconds=deadline) + KUBERNETES_WAIT_SLACK,
        heartbeat_timeout=KUBERNETES_HEARTBEAT,
        retry_policy=retry.KUBERNETES,
        summary=f"restart {deployment.describe()}",
    )


async def rollback(request: PlanRollbackInput) -> RollbackResult | str:
    """Emergency rollback of the service's current or last rollout, as a child workflow
    (or, when one is already running, wait for it): its result, or what it ended as."""
    planned = await _effect(
        "plan_rollback",
        request,
        RollbackRequest,
        start_to_close_timeout=timedelta(minutes=2),
        retry_policy=retry.PLATFORM,
        summary=f"plan the rollback of {request.service} in {request.environment}",
    )
    spec = planned.rollout.spec
    child_id = rollback_workflow_id(spec.service, spec.environment)
    try:
        with _failing_as_effect(since=BOUNDED_EFFECTS):  # waiting for a rollback running
            outcome = await child_or_running(
                "EmergencyRollback",
                planned,
                id=child_id,
                result_type=RollbackResult,
                task_timeout=WORKFLOW_TASK_TIMEOUT,
                static_summary=f"incident rollback of {spec.service} to {planned.target}",
            )
    except ChildWorkflowError as exc:
        raise EffectFailed(str(root_cause(exc))) from None
    if isinstance(outcome, Closed):  # an operator's rollback was running: it was waited for
        return outcome.said("a rollback")
    return outcome
