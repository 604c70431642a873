"""The runbook steps that look at the service, act on it or wait on it: ``query`` (a
diagnostic measurement), ``restart`` (servers through a platform, or the Kubernetes
Deployment), ``rollback`` (an EmergencyRollback child) and ``wait`` (a while, until the
alert resolves, or until a metric's condition holds)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.platforms.spec import PlatformSpec
    from workflows.core.conditions import ConditionError, evaluate_condition
    from workflows.core.durations import format_duration, parse_duration
    from workflows.core.waits import until
    from workflows.incidents import effects
    from workflows.incidents.spec import QueryStep, WaitStep
    from workflows.incidents.thread import RunbookPart
    from workflows.rollouts.emergency_models import PlanRollbackInput, RollbackResult

# A wait condition that cannot be evaluated fails its step (it failed the workflow task).
CONDITION_ERRORS_FAIL_THE_STEP = "incident-condition-errors-fail-the-step"
# A restart on platform kubernetes restarts the Deployment (restart_workload), not servers.
RESTART_DEPLOYMENTS = "incident-restarts-deployments"


@dataclass
class RunbookSteps(RunbookPart):
    """Runs these steps for ``IncidentRunbook``; a wait ends early when the incident closes."""

    async def query(self, step: QueryStep, key: str) -> None:
        values = await effects.measure(step.name, step.provider, key)
        shown = ", ".join(f"{v:g}" for v in values)
        await self._thread.tell("query", f"{step.name}: {shown}")

    async def restart(self, servers: list[str], platform: PlatformSpec | None, key: str) -> None:
        target = self._input.runbook.spec.target
        chosen_platform = platform or (target.platform if target else None)
        chosen = servers or (target.servers if target else [])
        service = self._values["service"]
        kubernetes = chosen_platform.kubernetes if chosen_platform is not None else None
        if kubernetes is not None and workflow.patched(RESTART_DEPLOYMENTS):
            state = await effects.restart_deployment(kubernetes, key)
            self._status.restarts += 1
            await self._thread.tell("restart", f"restarted {state.deployment}: {state.message}")
            return
        if not service or chosen_platform is None:
            raise effects.EffectFailed("no service name or platform to restart with")
        for server in chosen:
            result = await effects.restart(chosen_platform, service, server, f"{key}/{server}")
            self._status.restarts += 1
            took = f"{result.duration_ms / 1000:.1f} s"
            await self._thread.tell("restart", f"restarted {service} on {server} ({took})")

    async def rollback(self, to: str | None, reason: str | None) -> None:
        service, environment = self._values["service"], self._values["environment"]
        if not service or not environment:
            raise effects.EffectFailed("no service and environment to roll back")
        await self._thread.tell("rollback", f"rolling {service} in {environment} back")
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
        await self._thread.tell("rollback", f"rollback done — {outcome}")

    async def wait(self, step: WaitStep, key: str) -> None:
        timeout = parse_duration(step.timeout) if step.timeout else None
        if step.duration is not None:
            duration = parse_duration(step.duration)
            self._thread.waiting(f"wait step: {format_duration(duration)}")
            await until(self._closing, duration, f"wait {format_duration(duration)}")
        elif step.until is not None:
            self._thread.waiting("wait step: until the alert resolves")
            resolved = await until(
                lambda: self._status.alert_status == "resolved" or self._closing(),
                timeout,
                f"wait up to {step.timeout} for the alert to resolve",
            )
            if not resolved:
                self._thread.event("wait", f"alert still firing after {step.timeout}")
        elif step.metric is not None:
            await self._wait_metric(step, key, timeout)

    async def _wait_metric(self, step: WaitStep, key: str, timeout: timedelta | None) -> None:
        metric = step.metric
        assert metric is not None
        interval = parse_duration(metric.interval)
        deadline = workflow.now() + timeout if timeout else None
        self._thread.waiting(f"wait step: until {metric.success_condition}")
        attempt = 0
        while not self._closing():
            attempt += 1
            summary = f"check {metric.success_condition} #{attempt}"
            try:
                values = await effects.measure("wait", metric.provider, f"{key}/{attempt}", summary)
            except effects.EffectFailed as exc:
                self._thread.event("wait", f"measurement failed: {exc}")
            else:
                if _holds(metric.success_condition, values):
                    self._thread.event("wait", f"{metric.success_condition} holds")
                    return
            left = (deadline - workflow.now()) if deadline else interval
            if left <= timedelta(0):
                self._thread.event(
                    "wait", f"{metric.success_condition} still false after {step.timeout}"
                )
                return
            pause = min(interval, left)
            await until(self._closing, pause, f"wait {format_duration(pause)}")


def _holds(condition: str, values: list[float]) -> bool:
    """Whether ``condition`` holds on ``values``. One that cannot be evaluated on them
    fails the wait step with CEL's message instead of failing the workflow task."""
    try:
        return evaluate_condition(condition, values)
    except ConditionError as exc:
        if not workflow.patched(CONDITION_ERRORS_FAIL_THE_STEP):
            raise
        raise effects.EffectFailed(str(exc)) from None
