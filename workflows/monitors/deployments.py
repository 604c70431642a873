"""Workflow side of a monitor's Kubernetes Deployments: ask their readiness, turn the
answers into findings. Shared by the monitor run (the check) and the SelfHealer (its
verification after a restart, which goes through ``effects.restart_deployment``)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from activities.errors import root_cause
    from activities.health.readiness import CheckReadinessInput, ReadinessReport
    from workflows.core import retry
    from workflows.monitors.checks import MonitoredDeployment
    from workflows.monitors.models import Finding

# A monitor with spec.deployments asks check_readiness; a healer restarts them through the API.
CHECKS_DEPLOYMENTS = "monitor-checks-deployments"


async def check(deployment: MonitoredDeployment, key: str) -> ReadinessReport:
    """The Deployment's readiness; an API server that could not answer within
    ``retry.MEASURE`` is a report with ``error`` set, never a failed workflow."""
    where = deployment.describe()
    try:
        report: ReadinessReport = await workflow.execute_activity(
            "check_readiness",
            CheckReadinessInput(platform=deployment.platform(), key=f"{key}/{where}"),
            result_type=ReadinessReport,
            start_to_close_timeout=timedelta(seconds=60),
            retry_policy=retry.MEASURE,
            summary=f"readiness of {where}",
        )
    except ActivityError as exc:
        if is_cancelled_exception(exc):
            raise
        error = str(root_cause(exc))
        return ReadinessReport(deployment=where, healthy=False, message=error, error=error)
    return report


async def findings(deployments: list[MonitoredDeployment], key: str) -> list[Finding]:
    """``unresponsive`` for Deployments short of available replicas; ``inconclusive`` for
    one rolling out (a restart would interrupt it) or one the API server did not answer for."""
    reports = await asyncio.gather(*(check(d, key) for d in deployments))
    found = [
        Finding(kind="inconclusive", message=f"{r.deployment}: cannot be checked: {r.error}")
        if r.error is not None
        else Finding(kind="inconclusive", message=f"{r.deployment}: {r.message}")
        for r in reports
        if r.error is not None or r.rolling_out
    ]
    bad = [r for r in reports if not r.healthy and r.error is None and not r.rolling_out]
    if bad:
        detail = ", ".join(f"{r.deployment} ({r.message})" for r in bad)
        found.insert(
            0,
            Finding(
                kind="unresponsive",
                message=f"unready: {detail}",
                deployments=[r.deployment for r in bad],
            ),
        )
    return found
