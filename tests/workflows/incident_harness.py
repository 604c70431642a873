"""Stub pager and Slack (registered by name, like the real activities), a runbook builder
and helpers for IncidentRunbook tests. Hosts, health and rollouts come from the stub fleet."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

from temporalio import activity
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from activities.notify.models import PageInput, PageResult, SlackMessage, SlackPostInput
from activities.temporal.activities import WorkflowWatcher
from tests.fixtures.harness import queried, worker
from tests.workflows.fleet import Fleet, fleet_rollout
from workflows.incidents.models import (
    FIRING_SIGNAL,
    AlertNotification,
    IncidentInput,
    IncidentStatus,
    incident_workflow_id,
)
from workflows.incidents.runbook import IncidentRunbook
from workflows.incidents.spec import Runbook
from workflows.rollouts.emergency import EmergencyRollback
from workflows.rollouts.emergency_models import PlanRollbackInput, RollbackRequest
from workflows.rollouts.registry import BY_STRATEGY
from workflows.rollouts.spec import Rollout


def runbook(steps: list[dict[str, Any]], **spec: Any) -> Runbook:
    body: dict[str, Any] = {
        "match": {"alertname": "CheckoutErrors"},
        "slack": {"channel": "#incidents"},
        "steps": steps,
        **spec,
    }
    return Runbook.model_validate(
        {
            "apiVersion": "deployflow/v1",
            "kind": "Runbook",
            "metadata": {"name": "checkout-errors"},
            "spec": body,
        }
    )


def notification(status: str = "firing", group: str | None = None) -> AlertNotification:
    return AlertNotification(
        status=status,  # type: ignore[arg-type]
        group_key=group or f'{{}}:{{alertname="CheckoutErrors", run="{uuid.uuid4().hex}"}}',
        group_labels={"alertname": "CheckoutErrors"},
        common_labels={
            "alertname": "CheckoutErrors",
            "service": "checkout",
            "environment": "production",
            "severity": "critical",
        },
        common_annotations={"summary": "5xx above 50 %"},
    )


@dataclass
class Notifiers:
    """What the stub PagerDuty and Slack saw, and the fleet behind the remediation steps."""

    fleet: Fleet = field(default_factory=Fleet)
    pages: list[PageInput] = field(default_factory=list)
    posts: list[SlackPostInput] = field(default_factory=list)
    rollback_plans: list[PlanRollbackInput] = field(default_factory=list)
    # Slack refuses the posts this says so of (not retried, like a 4xx).
    refuse_post: Callable[[SlackPostInput], bool] = lambda input: False
    # What plan_rollback answers (its service and environment name the rollback's id).
    rollback_rollout: Rollout = field(
        default_factory=lambda: fleet_rollout({"canary": {"steps": [{"setWeight": 50}]}})
    )

    def page_log(self) -> list[tuple[str, str]]:
        return [(p.action, p.routing_key_env) for p in self.pages]

    def activities(self) -> list[Callable[..., Any]]:
        @activity.defn(name="page")
        async def page(input: PageInput) -> PageResult:
            self.pages.append(input)
            return PageResult(action=input.action, dedup_key=input.dedup_key, status="success")

        @activity.defn(name="post_slack")
        async def post_slack(input: SlackPostInput) -> SlackMessage:
            if self.refuse_post(input):
                raise ApplicationError("channel_not_found", type="SlackError", non_retryable=True)
            self.posts.append(input)
            ts = input.update_ts or f"1700000000.{len(self.posts):06d}"
            return SlackMessage(channel="C0INCIDENT", ts=ts, thread_ts=input.thread_ts)

        @activity.defn(name="plan_rollback")
        async def plan_rollback(input: PlanRollbackInput) -> RollbackRequest:
            self.rollback_plans.append(input)
            return RollbackRequest(rollout=self.rollback_rollout, target="v1", reason=input.reason)

        return [page, post_slack, plan_rollback]


def incident_worker(env: WorkflowEnvironment, stubs: Notifiers) -> AbstractAsyncContextManager[str]:
    return worker(
        env,
        [IncidentRunbook, EmergencyRollback, *BY_STRATEGY.values()],
        [*stubs.fleet.activities(), *stubs.activities(), WorkflowWatcher(env.client).await_closed],
    )


async def open_incident(
    env: WorkflowEnvironment,
    task_queue: str,
    book: Runbook,
    alert: AlertNotification | None = None,
    notifications_per_run: int = 2000,
) -> WorkflowHandle[Any, IncidentStatus]:
    """Signal-with-start, as the intake does."""
    alert = alert or notification()
    incident = IncidentInput(
        runbook=book,
        notification=alert,
        ui_url="http://ui.test/incident",
        notifications_per_run=notifications_per_run,
    )
    return await env.client.start_workflow(
        IncidentRunbook.run,
        incident,
        id=incident_workflow_id(alert.group_key, "CheckoutErrors"),
        task_queue=task_queue,
        start_signal=FIRING_SIGNAL,
        start_signal_args=[alert],
    )


async def status_when(
    handle: WorkflowHandle[Any, IncidentStatus],
    predicate: Callable[[IncidentStatus], bool],
    timeout: float = 15.0,
) -> IncidentStatus:
    """The incident's ``status`` once ``predicate`` holds (bounded)."""
    return await queried(
        handle, IncidentRunbook.status, predicate, "the incident's status", timeout
    )


async def rejection(handle: WorkflowHandle[Any, IncidentStatus], update: Any, arg: Any) -> str:
    """The validator's message when ``update`` is rejected (fails the test if accepted)."""
    try:
        await handle.execute_update(update, arg)
    except WorkflowUpdateFailedError as exc:
        return str(getattr(exc.cause, "message", exc.cause))
    raise AssertionError(f"{update} was accepted")
