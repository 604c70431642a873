"""IncidentRunbook: one alert group, from the first page to the resolution.

1. Run the runbook's steps in order: ``page`` the first escalation level, ``notify`` Slack
   (the first post opens the incident's thread; everything after goes in it), ``query``
   diagnostics, ``restart`` or ``rollback`` the service, ``wait``, and ``approve`` gates
   before risky steps.
2. Meanwhile escalate: a level not acknowledged within its ``ackTimeout`` has the next level
   paged. ``acknowledge`` stops escalating; ``escalate`` pages the next level now.
3. Resolve when the alert resolves (and stays resolved for ``resolveQuietPeriod``) or a
   human resolves it: PagerDuty is resolved on every paged level with the same dedup key,
   and the thread says so.

Repeated notifications of the group arrive as ``alert_firing`` signals (signal-with-start
from the intake), so they never open a second incident or page again. Every page, ack,
escalation and remediation is an event in this workflow's history.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow

# EffectFailed from its module's full name: ``from workflows.incidents import effects`` here
# would load a second copy of that module inside the sandbox, whose EffectFailed is not the
# one the passed-through steps, thread and escalation raise.
with workflow.unsafe.imports_passed_through():
    from workflows.core import search_attributes as sa
    from workflows.core.durations import format_duration, parse_duration
    from workflows.core.spec import refuse_problems
    from workflows.core.verbs import OperatorInput, said_by
    from workflows.core.waits import until
    from workflows.incidents.effects import EffectFailed
    from workflows.incidents.escalation import Escalation
    from workflows.incidents.models import (
        ApproveInput,
        IncidentInput,
        IncidentPhase,
        IncidentStatus,
    )
    from workflows.incidents.spec import ApproveStep, RunbookStep, render, runbook_problems
    from workflows.incidents.steps import RunbookSteps
    from workflows.incidents.thread import IncidentThread
    from workflows.incidents.verbs import IncidentVerbs


@workflow.defn(name="IncidentRunbook")
class IncidentRunbook(IncidentVerbs):
    """The alert group's incident: its state, its steps, its resolution; its verbs are in
    ``IncidentVerbs``. It speaks through ``IncidentThread`` (timeline, Slack, pages), pages
    through ``Escalation`` and runs its restarts, rollbacks and waits through
    ``RunbookSteps``."""

    @workflow.init
    def __init__(self, input: IncidentInput) -> None:
        info = workflow.info()
        spec = input.runbook.spec
        labels = input.notification.labels
        annotations = input.notification.common_annotations
        self._input = input
        # This run's page in the UI: later incidents of the same alert group reuse the id.
        self._ui_url = f"{input.ui_url}/{info.run_id}" if input.ui_url else None
        self._values = {
            **{f"labels.{k}": v for k, v in labels.items()},
            "alertname": labels.get("alertname", "alert"),
            "service": spec.service or labels.get("service", ""),
            "environment": spec.environment or labels.get("environment", ""),
            "severity": labels.get("severity", "critical"),
            "summary": annotations.get("summary", ""),
            "description": annotations.get("description", ""),
            "incident": info.workflow_id,
            "url": self._ui_url or "",
        }
        title = render("{{alertname}} on {{service}}", self._values).removesuffix(" on ")
        self._status = (
            input.carried.model_copy()  # continued as new: the state so far
            if input.carried is not None
            else IncidentStatus(
                incident=info.workflow_id,
                title=title,
                runbook=input.runbook.name,
                service=self._values["service"] or None,
                environment=self._values["environment"] or None,
                severity=self._values["severity"],
                step_count=len(spec.steps),
                dedup_key=f"deployflow/{info.workflow_id}/{info.first_execution_run_id[:8]}",
                opened_at=workflow.now(),
            )
        )
        self._human_resolve: OperatorInput | None = None
        self._approval: ApproveInput | None = None
        self._awaiting: ApproveStep | None = None
        self._closing = False
        self._steps: asyncio.Task[None] | None = None
        self._run_notifications = 0
        self._thread = IncidentThread(input, self._status, self._ui_url)
        closing = self._is_closing
        self._escalation = Escalation(input, self._status, self._thread, self._values, closing)
        self._runbook_steps = RunbookSteps(input, self._status, self._thread, self._values, closing)

    @workflow.run
    async def run(self, input: IncidentInput) -> IncidentStatus:
        if input.carried is None:
            self._begin()
            self._steps = asyncio.create_task(self._run_steps())
        else:
            self._thread.waiting("the alert to resolve, or someone to resolve the incident")
        resolved_by = await self._await_resolution()
        if resolved_by is None:
            # A long incident (Alertmanager repeats every few seconds for days): a fresh
            # history with the state so far; the workflow id and the dedup key stay.
            await workflow.wait_condition(workflow.all_handlers_finished)
            self._thread.event(
                "continued", f"continuing as new after {self._run_notifications} notifications"
            )
            workflow.continue_as_new(input.model_copy(update={"carried": self._status}))
        self._closing = True
        if self._steps is not None:
            await self._steps  # waits and approvals end at once; a running remediation finishes
        if self._escalation.task is not None:
            await self._escalation.task
        await self._close(resolved_by)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._status

    def _remediation_moot(self) -> bool:
        """A restart or rollback is not run once the alert has resolved by itself."""
        return self._alert_resolved() and workflow.patched("incident-skip-moot-remediation")

    def _alert_resolved(self) -> bool:
        return self._status.alert_status == "resolved"

    def _is_closing(self) -> bool:
        return self._closing

    def _begin(self) -> None:
        refuse_problems("runbook", runbook_problems(self._input.runbook))
        attributes = [
            sa.DEPLOY_STRATEGY.value_set("incident"),
            sa.DEPLOY_PHASE.value_set(IncidentPhase.TRIGGERED.value),
        ]
        if self._status.service:
            attributes.append(sa.DEPLOY_SERVICE.value_set(self._status.service))
        if self._status.environment:
            attributes.append(sa.DEPLOY_ENVIRONMENT.value_set(self._status.environment))
        workflow.upsert_search_attributes(attributes)
        source = self._input.notification.source
        self._thread.event(
            "opened", f"{self._status.title} ({source}); runbook {self._status.runbook}"
        )

    # -- the runbook ------------------------------------------------------------------

    async def _run_steps(self) -> None:
        skip_next = False
        for index, step in enumerate(self._input.runbook.spec.steps):
            if self._closing:
                self._thread.event("steps", f"incident resolved: steps from {index + 1} not run")
                return
            self._status.step = index + 1
            if skip_next:
                skip_next = False
                self._thread.event("skipped", f"step {index + 1} ({step.kind}): not approved")
                continue
            self._thread.waiting(f"step {index + 1}/{self._status.step_count}: {step.kind}")
            skip_next = not await self._run_step(index, step)
        if not self._alert_resolved():  # else the quiet period is what it waits for
            self._thread.waiting("the alert to resolve, or someone to resolve the incident")

    async def _run_step(self, index: int, step: RunbookStep) -> bool:
        """Run one step; False only from an ``approve`` that did not approve."""
        key = f"{self._status.incident}/step-{index + 1}"
        try:
            if step.page is not None:
                await self._escalation.page_step(step.page)
            elif step.notify is not None:
                channel = step.notify.channel
                await self._thread.notify(render(step.notify.text, self._values), channel)
            elif step.query is not None:
                await self._runbook_steps.query(step.query, key)
            elif (step.restart or step.rollback) and self._remediation_moot():
                await self._thread.tell(
                    "skipped", f"step {index + 1} ({step.kind}): alert resolved"
                )
            elif step.restart is not None:
                await self._runbook_steps.restart(step.restart.servers, step.restart.platform, key)
            elif step.rollback is not None:
                await self._runbook_steps.rollback(step.rollback.to, step.rollback.reason)
            elif step.wait is not None:
                await self._runbook_steps.wait(step.wait, key)
            elif step.approve is not None:
                return await self._approve(step.approve)
        except EffectFailed as exc:
            await self._thread.tell("failed", f"step {index + 1} ({step.kind}) failed: {exc}")
        return True

    async def _approve(self, step: ApproveStep) -> bool:
        self._approval, self._awaiting = None, step
        timeout = parse_duration(step.timeout) if step.timeout else None
        await self._thread.tell("approve", f"waiting for approval: {step.description}")
        self._thread.waiting(f"approval: {step.description} (update approve)")
        await until(
            lambda: self._approval is not None or self._closing,
            timeout,
            f"approval timeout {step.timeout}",
        )
        self._awaiting = None
        decision = self._approval
        if decision is None:
            why = "the incident resolved" if self._closing else f"no decision in {step.timeout}"
            self._thread.event("approve", f"not approved: {why}")
            return False
        verdict = "approved" if decision.approved else "rejected"
        await self._thread.tell("approve", said_by(verdict, decision.by, decision.reason))
        return decision.approved

    # -- resolution -------------------------------------------------------------------

    async def _await_resolution(self) -> str | None:
        """Who resolved: a human, or the alert (after the quiet period without re-firing);
        None when the run should continue as new first."""
        spec = self._input.runbook.spec
        quiet = parse_duration(spec.resolve_quiet_period) if spec.resolve_quiet_period else None
        while True:
            await workflow.wait_condition(
                lambda: (
                    self._human_resolve is not None
                    or self._alert_resolved()
                    or self._history_long()
                )
            )
            if self._human_resolve is not None:
                return self._human_resolve.by or "an operator"
            if not self._alert_resolved():
                return None
            if quiet is None:
                return "alertmanager"
            self._thread.waiting(
                f"quiet period of {format_duration(quiet)} after the alert resolved"
            )
            fired = await until(
                lambda: self._human_resolve is not None or not self._alert_resolved(),
                quiet,
                f"quiet period {format_duration(quiet)}",
            )
            if not fired:
                return "alertmanager"
            if self._human_resolve is None:
                self._thread.event("alert", "fired again during the quiet period")

    def _history_long(self) -> bool:
        """Time to continue as new: the steps and escalation are over (nothing in flight
        to carry) and this run has taken many notifications, or the server suggests it."""
        steps_running = self._steps is not None and not self._steps.done()
        if steps_running or self._escalation.busy() or self._awaiting is not None:
            return False
        many = self._run_notifications >= self._input.notifications_per_run
        return many or workflow.info().is_continue_as_new_suggested()

    async def _close(self, resolved_by: str) -> None:
        status = self._status
        status.resolved_at = workflow.now()
        status.resolved_by = resolved_by
        status.time_to_resolve_seconds = (status.resolved_at - status.opened_at).total_seconds()
        status.phase = IncidentPhase.RESOLVED
        workflow.upsert_search_attributes([sa.DEPLOY_PHASE.value_set(status.phase.value)])
        await self._escalation.resolve()
        took = format_duration(timedelta(seconds=round(status.time_to_resolve_seconds)))
        await self._thread.tell("resolved", f"resolved by {resolved_by} after {took}")
        await self._thread.mark_resolved()
        workflow.set_current_details(f"**Resolved** by {resolved_by} after {took}")
