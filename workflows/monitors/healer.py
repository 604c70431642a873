"""SelfHealer: restarts one service that monitors found unresponsive or leaking, within a
restart budget, and opens an incident when restarting is not allowed or did not help.

One per service and environment (id ``healer-<service>-<env>``), started by the first
monitor run that finds a problem and signalled (``report``) by the later ones. It keeps
the restart times of the budget window (``maxRestarts`` per ``per``, each restart waiting
``backoff`` * 2^(n-1) after the previous one) and ends once a whole window passes without
a report — by then the budget is whole again, so nothing is lost.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from workflows.core import retry, timeline
    from workflows.core.durations import format_duration, parse_duration
    from workflows.core.waits import until
    from workflows.incidents import effects
    from workflows.incidents.models import OpenIncidentInput
    from workflows.monitors import deployments as workloads
    from workflows.monitors.checks import MonitoredDeployment
    from workflows.monitors.models import (
        HealerInput,
        HealerStatus,
        HealReport,
        monitor_notification,
    )
    from workflows.monitors.spec import SelfHealing
    from workflows.rollouts import host_ops

INCIDENT_FAILURE_NOTED = "healer-incident-failure-noted"


@workflow.defn(name="SelfHealer")
class SelfHealer:
    @workflow.init
    def __init__(self, input: HealerInput) -> None:
        spec = input.monitor.spec
        assert spec.self_healing is not None  # monitors start a healer only with selfHealing
        self._monitor = input.monitor
        self._policy: SelfHealing = spec.self_healing
        # Only the newest report matters: an older one is superseded by it.
        self._pending: HealReport | None = input.report
        self._status = HealerStatus(
            service=spec.service,
            environment=spec.environment,
            max_restarts=self._policy.max_restarts,
        )
        if input.carried is not None:  # continued as new
            self._status = input.carried.model_copy()

    @workflow.run
    async def run(self, input: HealerInput) -> HealerStatus:
        window = parse_duration(self._policy.per)
        handled = 0
        while True:
            self._waiting(f"a report (ends after {format_duration(window)} without one)")
            if not await until(
                lambda: self._pending is not None,
                window,
                f"end after {format_duration(window)} without a report",
            ):
                break
            report, self._pending = self._pending, None
            assert report is not None  # the condition above
            self._status.reports += 1
            handled += 1
            await self._heal(report)
            if handled >= input.reports_per_run or workflow.info().is_continue_as_new_suggested():
                # A service unhealthy for weeks: a fresh history, the budget window kept.
                await workflow.wait_condition(workflow.all_handlers_finished)
                carry = {"carried": self._status, "report": self._pending}
                workflow.continue_as_new(input.model_copy(update=carry))
        self._event("done", f"no report for {format_duration(window)}: budget whole again")
        return self._status

    async def _heal(self, report: HealReport) -> None:
        servers = sorted({s for f in report.findings for s in f.servers})
        named = {d for f in report.findings for d in f.deployments}
        deployments = [d for d in self._monitor.spec.deployments if d.describe() in named]
        problem = "; ".join(f.message for f in report.findings)
        self._event("report", f"{report.run_id}: {problem}")
        restarts = self._status.restarts
        if restarts and report.at < restarts[-1] and workflow.patched("healer-drop-stale"):
            # Its checks ran before the last restart: they say nothing about the service now.
            self._event("stale", f"{report.run_id} checked before the last restart: ignored")
            return
        window = parse_duration(self._policy.per)
        now = workflow.now()
        self._status.restarts = [t for t in self._status.restarts if now - t < window]
        used = len(self._status.restarts)
        if used >= self._policy.max_restarts:
            reason = f"restart budget exhausted ({used} in {self._policy.per}): {problem}"
            await self._incident(reason)
            return
        if self._status.restarts:
            ready_at = self._status.restarts[-1] + self._policy.backoff_after(used)
            if ready_at > now:
                self._waiting(f"backoff until {ready_at:%H:%M:%S} before restart {used + 1}")
                await workflow.sleep(ready_at - now, summary=f"backoff before restart {used + 1}")
        await self._restart(servers, deployments, problem)

    async def _restart(
        self, servers: list[str], deployments: list[MonitoredDeployment], problem: str
    ) -> None:
        spec = self._monitor.spec
        key = f"{workflow.info().workflow_id}/restart-{self._status.reports}"
        self._status.restarts.append(workflow.now())
        platform = self._policy.platform
        for server in servers:
            self._waiting(f"restarting {server}")
            try:
                if platform is None:  # monitor_problems requires one with servers
                    raise effects.EffectFailed("selfHealing.platform is not set")
                await effects.restart(platform, spec.service, server, f"{key}/{server}")
            except effects.EffectFailed as exc:
                await self._incident(f"restart of {server} failed: {exc}")
                return
            self._event("restart", f"restarted {server} ({problem})")
        check = spec.health_check
        restarted: list[MonitoredDeployment] = []
        if deployments and workflow.patched(workloads.CHECKS_DEPLOYMENTS):
            if not await self._restart_deployments(deployments, key, problem):
                return
            restarted = deployments
            check = check if servers else None
        if check is None and not restarted:
            return
        verify = parse_duration(self._policy.verify_after)
        self._waiting(f"{format_duration(verify)} before checking the restart helped")
        await workflow.sleep(verify, summary=f"wait {format_duration(verify)}, then verify")
        for server in servers:
            if check is None:
                break
            report = await host_ops.check_target(check, server, f"{key}/verify/{server}")
            if not report.healthy:
                await self._incident(f"restart did not help: {server} {report.message}")
                return
        for deployment in restarted:
            ready = await workloads.check(deployment, f"{key}/verify")
            if not ready.healthy:
                await self._incident(f"restart did not help: {ready.deployment} {ready.message}")
                return
        healthy = [*servers, *(d.describe() for d in restarted)]
        self._event("verified", f"healthy after restart: {', '.join(healthy)}")

    async def _restart_deployments(
        self, deployments: list[MonitoredDeployment], key: str, problem: str
    ) -> bool:
        """``kubectl rollout restart`` each, waiting for its new pods; False (an incident
        opened) when one failed."""
        for deployment in deployments:
            where = deployment.describe()
            self._waiting(f"restarting {where}")
            try:
                state = await effects.restart_deployment(deployment.platform(), f"{key}/{where}")
            except effects.EffectFailed as exc:
                await self._incident(f"restart of {where} failed: {exc}")
                return False
            self._event("restart", f"restarted {where}: {state.message} ({problem})")
        return True

    async def _incident(self, reason: str) -> None:
        runbook = self._monitor.runbook
        if runbook is None:
            self._event("escalate", f"{reason}; no incident runbook configured: nobody to tell")
            return
        try:
            incident: str = await workflow.execute_activity(
                "open_incident",
                OpenIncidentInput(
                    notification=monitor_notification(self._monitor, "firing", reason),
                    runbook=runbook,
                ),
                result_type=str,
                start_to_close_timeout=timedelta(seconds=60),
                retry_policy=retry.INTAKE,
                summary="open or update the incident",
            )
        except ActivityError as exc:
            # The healer holds the restart budget: it must outlive a failed escalation.
            # The next report (the next monitor run) escalates again.
            if is_cancelled_exception(exc) or not workflow.patched(INCIDENT_FAILURE_NOTED):
                raise
            self._event("escalate", f"{reason}; could not open an incident: {exc.cause or exc}")
            return
        if incident not in self._status.incidents:
            self._status.incidents.append(incident)
        self._event("escalate", f"{reason} → {incident}")

    @workflow.signal(name="report", description="A monitor run's findings to heal.")
    def report(self, report: HealReport) -> None:
        self._pending = report

    @workflow.query(name="status", description="Restarts in the budget window, incidents.")
    def status(self) -> HealerStatus:
        return self._status

    def _waiting(self, what: str) -> None:
        self._status.waiting_for = what
        used = len(self._status.restarts)
        workflow.set_current_details(
            f"**{self._status.service}** in {self._status.environment}: waiting for {what}\n\n"
            f"restarts in window: {used}/{self._policy.max_restarts}"
        )

    def _event(self, kind: str, message: str) -> None:
        timeline.record(self._status.timeline, kind, message)
