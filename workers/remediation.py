"""Activities that act through Temporal itself on behalf of incidents and monitors.

They hold the worker's client, so they live here rather than in ``activities/`` (which
never imports workflow types): ``plan_rollback`` reads a service's history as
``deployflow rollback`` does (``workflows/rollouts/emergency_plan.py``), and
``open_incident`` delivers a notification as the Alertmanager intake does
(``workflows/incidents/intake.py``: signal-with-start, an open incident is signalled).
"""

from __future__ import annotations

import structlog
from temporalio import activity
from temporalio.client import Client

from activities import errors
from workflows.incidents import intake
from workflows.incidents.models import OpenIncidentInput
from workflows.rollouts.emergency_models import PlanRollbackInput, RollbackRequest
from workflows.rollouts.emergency_plan import NoRollbackTarget, plan

log = structlog.get_logger()


class Remediation:
    """Registered as bound methods: ``plan_rollback`` and ``open_incident``."""

    def __init__(self, client: Client, task_queue: str, ui_base: str | None) -> None:
        self._client = client
        self._task_queue = task_queue
        self._ui_base = ui_base

    @activity.defn(name="plan_rollback")
    async def plan_rollback(self, input: PlanRollbackInput) -> RollbackRequest:
        """What an emergency rollback of the service needs, from its history."""
        request = await plan_or_refuse(self._client, input)
        log_plan("plan_rollback", input.service, input.environment, request)
        return request

    @activity.defn(name="open_incident")
    async def open_incident(self, input: OpenIncidentInput) -> str:
        """Open (or signal the open) incident for the notification; its workflow id."""
        delivery = await intake.deliver(
            self._client, self._task_queue, input.notification, [input.runbook], self._ui_base
        )
        log.info("open_incident", workflow_id=delivery.workflow_id, action=delivery.action)
        return delivery.workflow_id


async def plan_or_refuse(client: Client, input: PlanRollbackInput) -> RollbackRequest:
    """``emergency_plan.plan`` as a planning activity answers it: a service whose history
    knows nothing to go back to fails the activity, not retried (RollbackImpossible)."""
    try:
        return await plan(
            client, input.service, input.environment, input.to, input.reason, input.by
        )
    except NoRollbackTarget as exc:
        raise errors.failure(errors.ROLLBACK_IMPOSSIBLE, str(exc)) from None


def log_plan(event: str, service: str, environment: str, request: RollbackRequest) -> None:
    log.info(
        event,
        service=service,
        environment=environment,
        target=request.target,
        cancelling=request.cancel_workflow_id,
    )
