"""ScopeRollback: every service of a group (or all of them) back to a good version, at once.

1. For each service, in parallel: plan its rollback from history (``plan_scope_member``,
   the same look-up as ``deployflow rollback SERVICE``), then run it as a child
   EmergencyRollback under the service's own id ``rollback-SERVICE-ENV`` — a rollback of
   that service already running is waited for, not started twice.
2. With ``canaryOnly`` the plan only stops the rollout running now (a child with no target:
   the cancelled rollout's own rollback returns traffic); a service with nothing running
   is skipped and its promoted version left alone.

One service failing (no good version in history, a router refusing) is recorded with its
root cause and does not stop the others. The children are durable: a worker killed
mid-way leaves them running, and this run picks their results up when it resumes.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from activities.errors import root_cause
    from workflows.core import retry, timeline
    from workflows.core.timeouts import WORKFLOW_TASK_TIMEOUT
    from workflows.core.waits import Closed, child_or_running
    from workflows.rollouts.emergency_models import RollbackResult, rollback_workflow_id
    from workflows.rollouts.scope_rollback_models import (
        PlanScopeMemberInput,
        ScopeMemberPlan,
        ScopeRollbackRequest,
        ScopeRollbackStatus,
        ServiceOutcome,
        ServiceRollback,
    )


@workflow.defn(name="ScopeRollback")
class ScopeRollback:
    @workflow.init
    def __init__(self, request: ScopeRollbackRequest) -> None:
        self._status = ScopeRollbackStatus(
            scope=request.scope,
            environment=request.environment,
            canary_only=request.canary_only,
            services=[ServiceRollback(service=s) for s in request.services],
        )

    @workflow.query(description="Each service's outcome so far, and the timeline.")
    def status(self) -> ScopeRollbackStatus:
        return self._status

    @workflow.run
    async def run(self, request: ScopeRollbackRequest) -> ScopeRollbackStatus:
        what = "stopping running rollouts of" if request.canary_only else "rolling back"
        self._event(
            "started",
            f"{what} {len(request.services)} service(s) of {request.scope} in "
            f"{request.environment}: {request.reason}",
        )
        await asyncio.gather(*(self._one(request, s) for s in self._status.services))
        done = self._status.services
        counts = {o: sum(s.outcome is o for s in done) for o in ServiceOutcome if o.finished}
        self._event("finished", ", ".join(f"{n} {o.value}" for o, n in counts.items() if n))
        return self._status

    async def _one(self, request: ScopeRollbackRequest, entry: ServiceRollback) -> None:
        service = entry.service
        try:
            plan = await workflow.execute_activity(
                "plan_scope_member",
                PlanScopeMemberInput(
                    service=service,
                    environment=request.environment,
                    canary_only=request.canary_only,
                    reason=f"{request.reason} (scope {request.scope})",
                    by=request.by,
                ),
                result_type=ScopeMemberPlan,
                # A read of visibility and a few histories: seconds. A worker killed
                # meanwhile costs this much before another plans again.
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=retry.PLATFORM,
                summary=f"plan the rollback of {service}",
            )
        except ActivityError as exc:
            self._finish(entry, ServiceOutcome.FAILED, "cannot be planned", str(root_cause(exc)))
            return
        if plan.request is None:
            self._finish(entry, ServiceOutcome.SKIPPED, plan.skipped or "nothing to do")
            return
        planned = plan.request
        running = planned.cancel_workflow_id is not None
        entry.before = planned.live
        entry.canary = planned.rollout.spec.version if running else None
        entry.workflow_id = rollback_workflow_id(service, request.environment)
        entry.outcome = ServiceOutcome.ROLLING_BACK
        self._event(service, f"rolling back to {planned.target or 'what ran before'}")
        try:
            outcome = await child_or_running(
                "EmergencyRollback",
                planned,
                id=entry.workflow_id,
                result_type=RollbackResult,
                task_timeout=WORKFLOW_TASK_TIMEOUT,
                # Ending this summary (terminate, reset) must not stop a rollback halfway.
                parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                static_summary=f"scope {request.scope}: rollback of {service} "
                f"to {planned.target or 'what ran before'}",
            )
        except ChildWorkflowError as exc:
            self._finish(entry, ServiceOutcome.FAILED, "rollback failed", str(root_cause(exc)))
            return
        if isinstance(outcome, Closed):
            self._other_closed(entry, outcome, planned.target or planned.live)
            return
        entry.after = outcome.version or planned.live
        self._finish(entry, ServiceOutcome.ROLLED_BACK, outcome.reason)

    def _other_closed(self, entry: ServiceRollback, closed: Closed, target: str | None) -> None:
        """A rollback of the service was already running (an operator's, an incident's): it
        was waited for, and how it closed is this service's outcome."""
        reason = closed.said("a rollback")
        if closed.completed:
            entry.after = target
            self._finish(entry, ServiceOutcome.ROLLED_BACK, reason)
        else:
            self._finish(entry, ServiceOutcome.FAILED, reason, reason)

    def _finish(
        self,
        entry: ServiceRollback,
        outcome: ServiceOutcome,
        reason: str,
        cause: str | None = None,
    ) -> None:
        entry.outcome, entry.reason, entry.root_cause = outcome, reason, cause
        self._event(entry.service, f"{outcome.value}: {cause or reason}")

    def _event(self, kind: str, message: str) -> None:
        timeline.record(self._status.events, kind, message)
        running = [s.service for s in self._status.services if not s.outcome.finished]
        workflow.set_current_details(
            f"{message}\n\nwaiting for: {', '.join(running)}" if running else message
        )
