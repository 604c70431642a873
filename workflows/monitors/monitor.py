"""ServiceMonitor: one scheduled check of a service (Temporal Schedules start it).

1. Health-check every server, ask each Deployment's readiness, judge each SLO query, and
   fit a line through each server's resident memory over the leak window.
2. Unresponsive or leaking servers and Deployments go to the service's SelfHealer (started
   as an abandoned child, or signalled when it already runs), which restarts within a budget.
3. SLO breaches — and, without self-healing, everything else — open an incident through
   the same path Alertmanager alerts take; a clean run resolves the monitor's incident.

A run is short and keeps no state: the restart budget lives in the SelfHealer, so it
holds across runs and two runs never restart the same service at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Literal, TypeVar

from temporalio import workflow
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    WorkflowAlreadyStartedError,
    is_cancelled_exception,
)

with workflow.unsafe.imports_passed_through():
    from activities.metrics.activities import MeasureInput, MeasureOutput
    from activities.metrics.trend import MemoryTrendInput, MemoryTrendOutput
    from activities.model import Model
    from workflows.core import retry
    from workflows.core import search_attributes as sa
    from workflows.core.conditions import ConditionError, evaluate_condition
    from workflows.core.timeouts import WORKFLOW_TASK_TIMEOUT
    from workflows.incidents.models import OpenIncidentInput
    from workflows.monitors import deployments
    from workflows.monitors.checks import Slo
    from workflows.monitors.models import (
        HEALER_WORKFLOW_TYPE,
        REPORT_SIGNAL,
        Finding,
        HealerInput,
        HealReport,
        MonitorResult,
        healer_workflow_id,
        monitor_notification,
    )
    from workflows.monitors.security import certificate_findings, dns_findings
    from workflows.monitors.spec import ServiceMonitor
    from workflows.rollouts import host_ops

HEALABLE = ("unresponsive", "memory-leak")
T = TypeVar("T")
# A check that cannot be judged — a condition that cannot be evaluated on the values, a
# measurement activity that failed — is an inconclusive finding, not a failed workflow task
# retried for ever (a stuck run blocks its schedule).
JUDGE_WHAT_IT_CAN = "monitor-inconclusive-on-errors"
# Certificate expiry and DNS resolution (workflows/monitors/security.py).
SECURITY_CHECKS = "monitor-certificates-and-dns"


@workflow.defn(name="ServiceMonitor")
class ServiceMonitorRun:
    @workflow.run
    async def run(self, monitor: ServiceMonitor) -> MonitorResult:
        spec = monitor.spec
        workflow.upsert_search_attributes(
            [
                sa.DEPLOY_SERVICE.value_set(spec.service),
                sa.DEPLOY_ENVIRONMENT.value_set(spec.environment),
                sa.DEPLOY_STRATEGY.value_set("monitor"),
            ]
        )
        result = MonitorResult(service=spec.service, environment=spec.environment, healthy=True)
        workflow.set_current_details(f"checking {spec.service} in {spec.environment}")
        checks = [self._health(monitor), *(self._slo(s) for s in spec.slos), self._leak(monitor)]
        if (spec.certificates or spec.dns) and workflow.patched(SECURITY_CHECKS):
            key = _key()
            checks += [certificate_findings(spec.certificates, key), dns_findings(spec.dns, key)]
        if spec.deployments and workflow.patched(deployments.CHECKS_DEPLOYMENTS):
            checks.append(deployments.findings(spec.deployments, _key()))
        for found in await asyncio.gather(*checks):
            result.findings += found
        # A query that cannot be judged (no traffic: 0/0, Prometheus down) is noted, like an
        # Argo Error measurement: it neither pages nor counts as healthy again.
        judged = [f for f in result.findings if f.kind != "inconclusive"]
        result.healthy = not judged
        heal = [f for f in judged if f.kind in HEALABLE]
        escalate = [f for f in judged if f.kind not in HEALABLE]
        if heal and spec.self_healing is not None:
            result.actions.append(await self._report(monitor, heal))
        else:
            escalate += heal
        if escalate:
            summary = "; ".join(f.message for f in escalate)
            result.actions.append(await self._incident(monitor, "firing", summary))
        elif not result.findings:
            result.actions.append(await self._incident(monitor, "resolved", "healthy again"))
        state = "healthy" if result.healthy else "; ".join(f.message for f in result.findings)
        workflow.set_current_details(f"{spec.service} in {spec.environment}: {state}")
        return result

    async def _health(self, monitor: ServiceMonitor) -> list[Finding]:
        check = monitor.spec.health_check
        if check is None:
            return []
        key = workflow.info().workflow_id
        reports = await asyncio.gather(
            *(host_ops.check_target(check, s, f"{key}/{s}") for s in monitor.spec.servers)
        )
        bad = [r for r in reports if not r.healthy]
        if not bad:
            return []
        detail = ", ".join(f"{r.target} ({r.message})" for r in bad)
        return [
            Finding(
                kind="unresponsive", message=f"unhealthy: {detail}", servers=[r.target for r in bad]
            )
        ]

    async def _slo(self, slo: Slo) -> list[Finding]:
        request = MeasureInput(metric=slo.name, provider=slo.provider, key=_key())
        summary = f"measure {slo.name}"
        output = await _check(
            "measure", request, summary, MeasureOutput, lambda e: MeasureOutput(values=[], error=e)
        )
        if output.error is not None:
            message = f"{slo.name}: cannot be measured: {output.error}"
            return [Finding(kind="inconclusive", message=message)]
        try:
            return judge_slo(slo, output.values)
        except ConditionError as exc:
            if not workflow.patched(JUDGE_WHAT_IT_CAN):
                raise
            return [Finding(kind="inconclusive", message=f"{slo.name}: cannot be judged: {exc}")]

    async def _leak(self, monitor: ServiceMonitor) -> list[Finding]:
        leak = monitor.spec.memory_leak
        if leak is None:
            return []
        request = MemoryTrendInput(
            provider=leak.provider, window_seconds=leak.window_seconds, key=_key()
        )
        summary = f"memory trend over {leak.window}"
        output = await _check(
            "memory_trend",
            request,
            summary,
            MemoryTrendOutput,
            lambda e: MemoryTrendOutput(error=e),
        )
        if output.error is not None:
            message = f"memory trend cannot be measured: {output.error}"
            return [Finding(kind="inconclusive", message=message)]
        leaking = [s for s in output.series if leak.is_leak(s)]
        if not leaking:
            return []
        servers = monitor.spec.servers
        named = [s.labels.get("instance") for s in leaking]
        chosen = [s for s in servers if s in named] or list(servers)
        rates = ", ".join(
            f"{s.labels.get('instance', '?')} +{(s.slope_per_second or 0) * 60 / 2**20:.1f} "
            f"MiB/min (R² {s.r2 or 0:.2f}, {s.points} points over {leak.window})"
            for s in leaking
        )
        # Restarting a Deployment replaces every pod: the leaking ones among them.
        workloads = [d.describe() for d in monitor.spec.deployments]
        message = f"memory leak: {rates}"
        return [Finding(kind="memory-leak", message=message, servers=chosen, deployments=workloads)]

    async def _report(self, monitor: ServiceMonitor, findings: list[Finding]) -> str:
        """Hand the findings to the service's SelfHealer, starting it if it is not running."""
        spec = monitor.spec
        healer = healer_workflow_id(spec.service, spec.environment)
        info = workflow.info()
        # ``at`` is when this run started checking: a restart after that makes it stale.
        report = HealReport(run_id=info.workflow_id, at=info.start_time, findings=findings)
        for _ in range(2):  # the healer may finish between our start and our signal
            try:
                await workflow.start_child_workflow(
                    HEALER_WORKFLOW_TYPE,
                    HealerInput(monitor=monitor, report=report),
                    id=healer,
                    task_timeout=WORKFLOW_TASK_TIMEOUT,
                    parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                    static_summary=f"self-healing {spec.service} in {spec.environment}",
                )
                return f"started {healer}"
            except WorkflowAlreadyStartedError:
                pass
            try:
                await workflow.get_external_workflow_handle(healer).signal(REPORT_SIGNAL, report)
                return f"reported to {healer}"
            except ApplicationError:
                continue
        return f"could not reach {healer}"

    async def _incident(
        self, monitor: ServiceMonitor, status: Literal["firing", "resolved"], summary: str
    ) -> str:
        runbook = monitor.runbook
        if runbook is None:
            return "no incident runbook configured"
        notification = monitor_notification(monitor, status, summary)
        incident: str = await workflow.execute_activity(
            "open_incident",
            OpenIncidentInput(notification=notification, runbook=runbook),
            result_type=str,
            start_to_close_timeout=timedelta(seconds=60),
            retry_policy=retry.INTAKE,
            summary="open or update the incident" if status == "firing" else "resolve the incident",
        )
        return f"{'opened or updated' if status == 'firing' else 'resolve sent to'} {incident}"


def judge_slo(slo: Slo, values: list[float]) -> list[Finding]:
    """An ``slo`` finding when the values breach the SLO; ``ConditionError`` when its
    condition cannot be evaluated on them."""
    shown = ", ".join(f"{v:g}" for v in values)
    if slo.failure_condition and evaluate_condition(slo.failure_condition, values):
        return [Finding(kind="slo", message=f"{slo.name} = {shown}: {slo.failure_condition}")]
    if slo.success_condition and not evaluate_condition(slo.success_condition, values):
        return [Finding(kind="slo", message=f"{slo.name} = {shown}: not {slo.success_condition}")]
    return []


async def _check(
    name: str, request: Model, summary: str, result_type: type[T], failed: Callable[[str], T]
) -> T:
    """Run measurement activity ``name``; a failure that outlived ``retry.MEASURE`` comes
    back as ``failed(message)`` (an inconclusive finding), never as a failed run."""
    try:
        output: T = await workflow.execute_activity(
            name,
            request,
            result_type=result_type,
            start_to_close_timeout=timedelta(seconds=60),
            retry_policy=retry.MEASURE,
            summary=summary,
        )
    except ActivityError as exc:
        if is_cancelled_exception(exc) or not workflow.patched(JUDGE_WHAT_IT_CAN):
            raise
        return failed(f"activity failed: {exc.cause or exc}")
    return output


def _key() -> str:
    return workflow.info().workflow_id
