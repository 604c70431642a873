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
import itertools
from datetime import timedelta
from typing import TypeVar

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities import errors
    from activities.notify.models import Link
    from activities.platforms.spec import PlatformSpec
    from workflows.core import search_attributes as sa
    from workflows.core.conditions import ConditionError, evaluate_condition
    from workflows.core.durations import format_duration, parse_duration
    from workflows.core.verbs import OperatorInput, said_by
    from workflows.incidents import effects
    from workflows.incidents.base import IncidentBase
    from workflows.incidents.models import (
        ApproveInput,
        IncidentInput,
        IncidentPhase,
        IncidentStatus,
    )
    from workflows.incidents.spec import (
        ApproveStep,
        EscalationLevel,
        PageStep,
        RunbookStep,
        WaitStep,
        render,
        runbook_problems,
    )
    from workflows.rollouts.emergency_models import PlanRollbackInput, RollbackResult

PAGER_SEVERITIES = {"critical", "error", "warning", "info"}
# A wait condition that cannot be evaluated fails its step (it failed the workflow task).
CONDITION_ERRORS_FAIL_THE_STEP = "incident-condition-errors-fail-the-step"
# A restart on platform kubernetes restarts the Deployment (restart_workload), not servers.
RESTART_DEPLOYMENTS = "incident-restarts-deployments"
T = TypeVar("T")


@workflow.defn(name="IncidentRunbook")
class IncidentRunbook(IncidentBase):
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
        self._status = IncidentStatus(
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
        self._human_resolve: OperatorInput | None = None
        self._escalate_now = False
        self._approval: ApproveInput | None = None
        self._awaiting: ApproveStep | None = None
        self._closing = False
        self._escalation: asyncio.Task[None] | None = None
        self._steps: asyncio.Task[None] | None = None
        self._triggered: list[EscalationLevel] = []
        self._run_notifications = 0
        if input.carried is not None:  # continued as new: the state so far
            self._status = input.carried.model_copy()
            done = set(input.carried.triggered_levels)
            self._triggered = [lv for lv in spec.escalation.levels if lv.name in done]

    @workflow.run
    async def run(self, input: IncidentInput) -> IncidentStatus:
        if input.carried is None:
            self._begin()
            self._steps = asyncio.create_task(self._run_steps())
        else:
            self._waiting("the alert to resolve, or someone to resolve the incident")
        resolved_by = await self._await_resolution()
        if resolved_by is None:
            # A long incident (Alertmanager repeats every few seconds for days): a fresh
            # history with the state so far; the workflow id and the dedup key stay.
            await workflow.wait_condition(workflow.all_handlers_finished)
            self._event(
                "continued", f"continuing as new after {self._run_notifications} notifications"
            )
            workflow.continue_as_new(input.model_copy(update={"carried": self._status}))
        self._closing = True
        if self._steps is not None:
            await self._steps  # waits and approvals end at once; a running remediation finishes
        if self._escalation is not None:
            await self._escalation
        await self._close(resolved_by)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._status

    def _begin(self) -> None:
        problems = runbook_problems(self._input.runbook)
        if problems:
            raise ApplicationError(
                "invalid runbook:\n" + "\n".join(problems),
                type=errors.INVALID_SPEC,
                non_retryable=True,
            )
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
        self._event("opened", f"{self._status.title} ({source}); runbook {self._status.runbook}")

    # -- the runbook ------------------------------------------------------------------

    async def _run_steps(self) -> None:
        skip_next = False
        for index, step in enumerate(self._input.runbook.spec.steps):
            if self._closing:
                self._event("steps", f"incident resolved: steps from {index + 1} not run")
                return
            self._status.step = index + 1
            if skip_next:
                skip_next = False
                self._event("skipped", f"step {index + 1} ({step.kind}): not approved")
                continue
            self._waiting(f"step {index + 1}/{self._status.step_count}: {step.kind}")
            skip_next = not await self._run_step(index, step)
        if not self._alert_resolved():  # else the quiet period is what it waits for
            self._waiting("the alert to resolve, or someone to resolve the incident")

    async def _run_step(self, index: int, step: RunbookStep) -> bool:
        """Run one step; False only from an ``approve`` that did not approve."""
        key = f"{self._status.incident}/step-{index + 1}"
        try:
            if step.page is not None:
                await self._page_step(step.page)
            elif step.notify is not None:
                channel = step.notify.channel
                await self._notify(render(step.notify.text, self._values), channel)
            elif step.query is not None:
                values = await effects.measure(step.query.name, step.query.provider, key)
                shown = ", ".join(f"{v:g}" for v in values)
                await self._tell("query", f"{step.query.name}: {shown}")
            elif (step.restart or step.rollback) and self._remediation_moot():
                await self._tell("skipped", f"step {index + 1} ({step.kind}): alert resolved")
            elif step.restart is not None:
                await self._restart(step.restart.servers, step.restart.platform, key)
            elif step.rollback is not None:
                await self._rollback(step.rollback.to, step.rollback.reason)
            elif step.wait is not None:
                await self._wait(step.wait, key)
            elif step.approve is not None:
                return await self._approve(step.approve)
        except effects.EffectFailed as exc:
            await self._tell("failed", f"step {index + 1} ({step.kind}) failed: {exc}")
        return True

    async def _page_step(self, step: PageStep) -> None:
        if self._status.paged_levels:
            self._event("page", "already paged")
            return
        levels = self._input.runbook.spec.escalation.levels
        await self._page(levels[0], step)
        if len(levels) > 1:
            self._escalation = asyncio.create_task(self._escalate(levels, step))

    async def _escalate(self, levels: list[EscalationLevel], step: PageStep) -> None:
        """Page the next level whenever the current one is not acknowledged in time."""
        for current, following in itertools.pairwise(levels):
            assert current.ack_timeout is not None  # the spec requires it on all but the last
            timeout = parse_duration(current.ack_timeout)
            try:
                await workflow.wait_condition(
                    self._escalation_over,
                    timeout=timeout,
                    timeout_summary=f"wait {format_duration(timeout)} for {current.name} to ack",
                )
            except TimeoutError:
                self._event("escalate", f"{current.name} did not acknowledge within {timeout}")
            if self._status.acknowledged_at is not None or self._closing:
                return
            self._escalate_now = False
            await self._page(following, step)

    def _escalation_over(self) -> bool:
        acked = self._status.acknowledged_at is not None
        return acked or self._closing or self._escalate_now

    async def _page(self, level: EscalationLevel, step: PageStep) -> None:
        self._status.paged_levels.append(level.name)
        self._status.level = level.name
        severity = step.severity or self._values["severity"]
        summary = render(step.summary or "{{alertname}} on {{service}}: {{summary}}", self._values)
        links = []
        if self._ui_url:
            links.append(Link(href=self._ui_url, text="deployflow incident"))
        generator = next(iter(self._input.notification.alerts), None)
        if generator is not None and generator.generator_url:
            links.append(Link(href=generator.generator_url, text="alert source"))
        try:
            await effects.page(
                "trigger",
                self._status.dedup_key,
                level.routing_key_env,
                level=level.name,
                summary=summary.strip(" :") or self._status.title,
                severity=severity if severity in PAGER_SEVERITIES else "critical",
                source=self._values["service"] or "deployflow",
                details={
                    "incident": self._status.incident,
                    "runbook": self._status.runbook,
                    "level": level.name,
                    "labels": self._input.notification.labels,
                    "alerts": self._alert_count(),
                    "annotations": self._input.notification.common_annotations,
                },
                links=links,
            )
        except effects.EffectFailed as exc:
            await self._tell("page", f"paging {level.name} failed: {exc}")
            return
        # No await between these two lines: `acknowledge` snapshots `_triggered` when it
        # sets acknowledged_at, so exactly one of them acknowledges this level.
        acknowledged_meanwhile = self._status.acknowledged_at is not None
        self._triggered.append(level)
        self._status.triggered_levels.append(level.name)
        await self._tell("page", f"paged {level.name}")
        if acknowledged_meanwhile:
            await self._pagers("acknowledge", [level])

    async def _restart(self, servers: list[str], platform: PlatformSpec | None, key: str) -> None:
        target = self._input.runbook.spec.target
        chosen_platform = platform or (target.platform if target else None)
        chosen = servers or (target.servers if target else [])
        service = self._values["service"]
        kubernetes = chosen_platform.kubernetes if chosen_platform is not None else None
        if kubernetes is not None and workflow.patched(RESTART_DEPLOYMENTS):
            state = await effects.restart_deployment(kubernetes, key)
            self._status.restarts += 1
            await self._tell("restart", f"restarted {state.deployment}: {state.message}")
            return
        if not service or chosen_platform is None:
            raise effects.EffectFailed("no service name or platform to restart with")
        for server in chosen:
            result = await effects.restart(chosen_platform, service, server, f"{key}/{server}")
            self._status.restarts += 1
            took = f"{result.duration_ms / 1000:.1f} s"
            await self._tell("restart", f"restarted {service} on {server} ({took})")

    async def _rollback(self, to: str | None, reason: str | None) -> None:
        service, environment = self._values["service"], self._values["environment"]
        if not service or not environment:
            raise effects.EffectFailed("no service and environment to roll back")
        await self._tell("rollback", f"rolling {service} in {environment} back")
        outcome = await effects.rollback(
            PlanRollbackInput(
                service=service,
                environment=environment,
                to=to,
                reason=reason or f"incident {self._status.incident}: {self._status.title}",
                by=f"incident {self._status.incident}",
            )
        )
        if isinstance(outcome, RollbackResult):
            outcome = f"{outcome.version or 'previous version'}: {outcome.reason}"
        await self._tell("rollback", f"rollback done — {outcome}")

    async def _wait(self, step: WaitStep, key: str) -> None:
        timeout = parse_duration(step.timeout) if step.timeout else None
        if step.duration is not None:
            duration = parse_duration(step.duration)
            self._waiting(f"wait step: {format_duration(duration)}")
            await self._until(lambda: self._closing, duration, f"wait {format_duration(duration)}")
        elif step.until is not None:
            self._waiting("wait step: until the alert resolves")
            resolved = await self._until(
                lambda: self._alert_resolved() or self._closing,
                timeout,
                f"wait up to {step.timeout} for the alert to resolve",
            )
            if not resolved:
                self._event("wait", f"alert still firing after {step.timeout}")
        elif step.metric is not None:
            await self._wait_metric(step, key, timeout)

    async def _wait_metric(self, step: WaitStep, key: str, timeout: timedelta | None) -> None:
        metric = step.metric
        assert metric is not None
        interval = parse_duration(metric.interval)
        deadline = workflow.now() + timeout if timeout else None
        self._waiting(f"wait step: until {metric.success_condition}")
        attempt = 0
        while not self._closing:
            attempt += 1
            summary = f"check {metric.success_condition} #{attempt}"
            try:
                values = await effects.measure("wait", metric.provider, f"{key}/{attempt}", summary)
            except effects.EffectFailed as exc:
                self._event("wait", f"measurement failed: {exc}")
            else:
                if _holds(metric.success_condition, values):
                    self._event("wait", f"{metric.success_condition} holds")
                    return
            left = (deadline - workflow.now()) if deadline else interval
            if left <= timedelta(0):
                self._event("wait", f"{metric.success_condition} still false after {step.timeout}")
                return
            pause = min(interval, left)
            await self._until(lambda: self._closing, pause, f"wait {format_duration(pause)}")

    async def _approve(self, step: ApproveStep) -> bool:
        self._approval, self._awaiting = None, step
        timeout = parse_duration(step.timeout) if step.timeout else None
        await self._tell("approve", f"waiting for approval: {step.description}")
        self._waiting(f"approval: {step.description} (update approve)")
        await self._until(
            lambda: self._approval is not None or self._closing,
            timeout,
            f"approval timeout {step.timeout}",
        )
        self._awaiting = None
        decision = self._approval
        if decision is None:
            why = "the incident resolved" if self._closing else f"no decision in {step.timeout}"
            self._event("approve", f"not approved: {why}")
            return False
        verdict = "approved" if decision.approved else "rejected"
        await self._tell("approve", said_by(verdict, decision.by, decision.reason))
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
            self._waiting(f"quiet period of {format_duration(quiet)} after the alert resolved")
            fired = await self._until(
                lambda: self._human_resolve is not None or not self._alert_resolved(),
                quiet,
                f"quiet period {format_duration(quiet)}",
            )
            if not fired:
                return "alertmanager"
            if self._human_resolve is None:
                self._event("alert", "fired again during the quiet period")

    def _history_long(self) -> bool:
        """Time to continue as new: the steps and escalation are over (nothing in flight
        to carry) and this run has taken many notifications, or the server suggests it."""
        busy = [t for t in (self._steps, self._escalation) if t is not None and not t.done()]
        if busy or self._awaiting is not None:
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
        await self._pagers("resolve", self._triggered)
        took = format_duration(timedelta(seconds=round(status.time_to_resolve_seconds)))
        await self._tell("resolved", f"resolved by {resolved_by} after {took}")
        slack = self._input.runbook.spec.slack
        if status.slack is not None and slack is not None:
            try:
                await effects.post(
                    status.slack.channel,
                    f":white_check_mark: RESOLVED — {status.title}",
                    slack.token_env,
                    update_ts=status.slack.ts,
                )
            except effects.EffectFailed as exc:
                self._event("slack", f"could not mark the message resolved: {exc}")
        workflow.set_current_details(f"**Resolved** by {resolved_by} after {took}")


def _holds(condition: str, values: list[float]) -> bool:
    """Whether ``condition`` holds on ``values``. One that cannot be evaluated on them
    fails the wait step with CEL's message instead of failing the workflow task."""
    try:
        return evaluate_condition(condition, values)
    except ConditionError as exc:
        if not workflow.patched(CONDITION_ERRORS_FAIL_THE_STEP):
            raise
        raise effects.EffectFailed(str(exc)) from None
