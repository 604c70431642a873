"""``plan_scope_member``: what ScopeRollback asks for one service of its scope.

It reads the service's history with the worker's client, the way ``deployflow rollback
SERVICE`` does (``workflows/rollouts/emergency_plan.py``), so it lives beside
``plan_rollback`` rather than in ``activities/``. A read only: retrying it is always safe.
"""

from __future__ import annotations

from temporalio import activity
from temporalio.client import Client

from workers.remediation import log_plan, plan_or_refuse
from workflows.rollouts import emergency_plan
from workflows.rollouts.emergency_models import PlanRollbackInput
from workflows.rollouts.scope_rollback_models import PlanScopeMemberInput, ScopeMemberPlan
from workflows.rollouts.spec import rollout_workflow_id


class ScopePlanning:
    """Registered as the bound method ``plan_scope_member``."""

    def __init__(self, client: Client) -> None:
        self._client = client

    @activity.defn(name="plan_scope_member")
    async def plan_scope_member(self, input: PlanScopeMemberInput) -> ScopeMemberPlan:
        """The member's EmergencyRollback request; with ``canaryOnly`` one that only stops
        the running rollout, or ``skipped`` when none runs."""
        running_id = rollout_workflow_id(input.service, input.environment)
        if input.canary_only and not await emergency_plan.is_running(self._client, running_id):
            return ScopeMemberPlan(skipped="no rollout running: the promoted version stays")
        member = PlanRollbackInput(
            service=input.service, environment=input.environment, reason=input.reason, by=input.by
        )
        request = await plan_or_refuse(self._client, member)
        if input.canary_only:
            # Only the cancel: the rollout's own rollback puts back what was live.
            request = request.model_copy(update={"target": None, "database_revision": None})
        log_plan("plan_scope_member", input.service, input.environment, request)
        return ScopeMemberPlan(request=request)
