"""ServiceMonitor runs and the SelfHealer with time skipping: what a run finds, who it
tells, and a restart budget that holds across runs."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio import activity
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from activities.metrics.trend import MemoryTrendInput, MemoryTrendOutput, SeriesTrend
from tests.fixtures.harness import queried, worker
from tests.workflows.fleet import STABLE, Fleet
from workflows.incidents.models import OpenIncidentInput
from workflows.monitors.healer import SelfHealer
from workflows.monitors.models import (
    REPORT_SIGNAL,
    Finding,
    HealerInput,
    HealerStatus,
    HealReport,
    MonitorResult,
    healer_workflow_id,
)
from workflows.monitors.monitor import ServiceMonitorRun
from workflows.monitors.spec import ServiceMonitor, parse_monitor

PROM = {"prometheus": {"address": "http://127.0.0.1:9", "query": "up"}}
RUNBOOK = {
    "apiVersion": "deployflow/v1",
    "kind": "Runbook",
    "metadata": {"name": "checkout-unhealthy"},
    "spec": {"steps": [{"page": {}}]},
}


def monitor(**spec: Any) -> ServiceMonitor:
    body: dict[str, Any] = {
        "service": "checkout",
        "environment": f"test-{uuid.uuid4().hex[:8]}",
        "schedule": {"offHours": {"every": "15m"}},
        "servers": STABLE,
        "healthCheck": {"http": {"path": "/healthz"}, "periodSeconds": 1},
        "selfHealing": {
            "platform": {"command": {"deploy": ["true"], "restart": ["restart", "{host}"]}},
            "maxRestarts": 2,
            "per": "1h",
            "backoff": "1m",
            "verifyAfter": "1s",
        },
        "incident": {"runbook": "checkout-unhealthy"},
        **spec,
    }
    document = {
        "apiVersion": "deployflow/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": "checkout"},
        "spec": body,
    }
    return parse_monitor([document, RUNBOOK])


class Intake:
    """Stub ``open_incident``: what monitors and healers escalated."""

    def __init__(self) -> None:
        self.opened: list[OpenIncidentInput] = []
        self.intake_down = False  # set: open_incident fails (the worker cannot reach Temporal)
        self.intake_attempts = 0

    def activities(self) -> list[Callable[..., Any]]:
        @activity.defn(name="open_incident")
        async def open_incident(input: OpenIncidentInput) -> str:
            self.intake_attempts += 1
            if self.intake_down:
                raise RuntimeError("frontend unavailable")
            self.opened.append(input)
            return "incident-serviceunhealthy-test"

        return [open_incident]

    def firing(self) -> list[str]:
        return [
            o.notification.common_annotations["summary"]
            for o in self.opened
            if o.notification.status == "firing"
        ]


class Pager(Intake):
    """Stub ``open_incident`` and ``memory_trend``; the fleet does hosts and health."""

    def __init__(
        self,
        fleet: Fleet,
        trend: Callable[[], list[SeriesTrend]] = list,
    ) -> None:
        super().__init__()
        self.fleet = fleet
        self.trend = trend

    def activities(self) -> list[Callable[..., Any]]:
        @activity.defn(name="memory_trend")
        async def memory_trend(input: MemoryTrendInput) -> MemoryTrendOutput:
            return MemoryTrendOutput(series=self.trend())

        return [*self.fleet.activities(), *super().activities(), memory_trend]


def monitor_worker(env: WorkflowEnvironment, pager: Pager) -> AbstractAsyncContextManager[str]:
    return worker(env, [ServiceMonitorRun, SelfHealer], pager.activities())


def report(*servers: str, at: datetime | None = None) -> HealReport:
    """A monitor run's report; ``at`` is when its checks started (default: now)."""
    finding = Finding(kind="unresponsive", message="unhealthy", servers=list(servers))
    return HealReport(
        run_id=f"run-{uuid.uuid4().hex[:6]}", at=at or datetime.now(UTC), findings=[finding]
    )


async def start_healer(
    env: WorkflowEnvironment, tq: str, m: ServiceMonitor, reports_per_run: int = 500
) -> WorkflowHandle[Any, HealerStatus]:
    return await env.client.start_workflow(
        SelfHealer.run,
        HealerInput(monitor=m, report=report(STABLE[0]), reports_per_run=reports_per_run),
        id=healer_workflow_id(m.spec.service, m.spec.environment),
        task_queue=tq,
    )


def healer_of(env: WorkflowEnvironment, m: ServiceMonitor) -> WorkflowHandle[Any, HealerStatus]:
    """The handle of ``m``'s service's SelfHealer (its newest run)."""
    return env.client.get_workflow_handle_for(
        SelfHealer.run, healer_workflow_id(m.spec.service, m.spec.environment)
    )


async def healer_when(handle, predicate, timeout: float = 15.0) -> HealerStatus:
    """The healer's ``status`` (its newest run) once ``predicate`` holds."""
    return await queried(handle, SelfHealer.status, predicate, "the healer's status", timeout)


async def test_restart_budget_holds_across_reports_then_an_incident_opens(temporal_env):
    """One report per run: the budget also holds across continue-as-new."""
    fleet = Fleet()
    pager = Pager(fleet)
    m = monitor()
    async with monitor_worker(temporal_env, pager) as tq:
        with temporal_env.with_time_skipping_disabled():
            first = await start_healer(temporal_env, tq, m, reports_per_run=1)
            handle = temporal_env.client.get_workflow_handle_for(SelfHealer.run, first.id)
            once = await healer_when(handle, lambda s: len(s.restarts) == 1)
            after = once.restarts[-1] + timedelta(seconds=1)
            await handle.signal(REPORT_SIGNAL, report(STABLE[0], at=after))
            backoff = await healer_when(handle, lambda s: "backoff" in (s.waiting_for or ""))
            assert fleet.actions("restart") == [("restart", STABLE[0], None)]
        await temporal_env.fast_forward(handle, timedelta(seconds=61))
        twice = await healer_when(handle, lambda s: len(s.restarts) == 2)
        with temporal_env.with_time_skipping_disabled():
            after = twice.restarts[-1] + timedelta(seconds=1)
            await handle.signal(REPORT_SIGNAL, report(STABLE[0], at=after))
            await healer_when(handle, lambda s: s.incidents != [])
        await temporal_env.fast_forward(handle, timedelta(hours=2))
        result = await handle.result()
    assert "backoff" in (backoff.waiting_for or "")
    assert (await handle.describe()).run_id != first.result_run_id
    assert len(fleet.actions("restart")) == 2
    first, second = result.restarts
    assert second - first >= timedelta(minutes=1)
    assert len(pager.firing()) == 1
    assert "restart budget exhausted (2 in 1h)" in pager.firing()[0]


async def test_a_report_from_checks_before_the_last_restart_is_ignored(temporal_env):
    fleet = Fleet()
    pager = Pager(fleet)
    m = monitor()
    async with monitor_worker(temporal_env, pager) as tq:
        with temporal_env.with_time_skipping_disabled():
            handle = await start_healer(temporal_env, tq, m)
            once = await healer_when(
                handle, lambda s: any(e.kind == "verified" for e in s.timeline)
            )
            before = once.restarts[-1] - timedelta(seconds=5)
            await handle.signal(REPORT_SIGNAL, report(STABLE[0], at=before))
            stale = await healer_when(handle, lambda s: any(e.kind == "stale" for e in s.timeline))
        await temporal_env.fast_forward(handle, timedelta(hours=2))
        result = await handle.result()
    assert "checked before the last restart: ignored" in stale.timeline[-1].message
    assert len(fleet.actions("restart")) == 1
    assert len(result.restarts) == 1
    assert pager.opened == []


async def test_slos_that_cannot_be_measured_neither_page_nor_resolve(temporal_env):
    fleet = Fleet(measure_error="query returned NaN")
    pager = Pager(fleet)
    slo = {"name": "error-rate", "provider": PROM, "successCondition": "result[0] < 0.01"}
    m = monitor(slos=[slo])
    async with monitor_worker(temporal_env, pager) as tq:
        result: MonitorResult = await temporal_env.client.execute_workflow(
            ServiceMonitorRun.run, m, id=f"monitor-run-{uuid.uuid4().hex}", task_queue=tq
        )
    assert result.healthy
    assert [f.kind for f in result.findings] == ["inconclusive"]
    assert "error-rate: cannot be measured: query returned NaN" in result.findings[0].message
    assert pager.opened == []


async def test_a_restart_that_does_not_help_opens_an_incident(temporal_env):
    fleet = Fleet(unhealthy={(STABLE[0], "v1")})
    pager = Pager(fleet)
    m = monitor()
    async with monitor_worker(temporal_env, pager) as tq:
        handle = await start_healer(temporal_env, tq, m)
        result = await handle.result()
    assert fleet.actions("restart") == [("restart", STABLE[0], None)]
    assert len(result.restarts) == 1
    assert "restart did not help" in pager.firing()[0]


async def test_monitor_run_hands_unhealthy_servers_to_the_healer_and_slo_breaches_to_an_incident(
    temporal_env,
):
    fleet = Fleet(unhealthy={(STABLE[1], "v1")}, measure_values=lambda n: [0.2])
    pager = Pager(fleet)
    slo = {"name": "error-rate", "provider": PROM, "successCondition": "result[0] < 0.01"}
    m = monitor(slos=[slo])
    async with monitor_worker(temporal_env, pager) as tq:
        result: MonitorResult = await temporal_env.client.execute_workflow(
            ServiceMonitorRun.run, m, id=f"monitor-run-{uuid.uuid4().hex}", task_queue=tq
        )
        healer = temporal_env.client.get_workflow_handle_for(
            SelfHealer.run, healer_workflow_id(m.spec.service, m.spec.environment)
        )
        healed = await healer.result()
    assert not result.healthy
    assert [f.kind for f in result.findings] == ["unresponsive", "slo"]
    assert result.findings[0].servers == [STABLE[1]]
    assert result.actions[0].startswith("started healer-checkout-")
    assert "error-rate = 0.2: not result[0] < 0.01" in pager.firing()[0]
    assert fleet.actions("restart") == [("restart", STABLE[1], None)]
    assert healed.reports == 1


async def test_a_steady_memory_climb_is_a_leak_and_a_clean_run_resolves(temporal_env):
    fleet = Fleet()
    climbing = [
        SeriesTrend(
            labels={"instance": STABLE[0]},
            points=30,
            first=1e8,
            last=3e8,
            slope_per_second=2**20,  # 60 MiB/min
            r2=0.99,
        )
    ]
    leak = {"provider": PROM, "window": "10m", "minGrowthPerMinute": "10Mi"}
    pager = Pager(fleet, trend=lambda: climbing)
    m = monitor(memoryLeak=leak, selfHealing=None)
    async with monitor_worker(temporal_env, pager) as tq:
        leaking: MonitorResult = await temporal_env.client.execute_workflow(
            ServiceMonitorRun.run, m, id=f"monitor-run-{uuid.uuid4().hex}", task_queue=tq
        )
        pager.trend = list
        clean: MonitorResult = await temporal_env.client.execute_workflow(
            ServiceMonitorRun.run, m, id=f"monitor-run-{uuid.uuid4().hex}", task_queue=tq
        )
    assert [f.kind for f in leaking.findings] == ["memory-leak"]
    assert leaking.findings[0].servers == [STABLE[0]]
    assert "+60.0 MiB/min" in leaking.findings[0].message
    assert clean.healthy
    assert [o.notification.status for o in pager.opened] == ["firing", "resolved"]


async def test_slo_conditions_that_cannot_be_evaluated_are_inconclusive_not_stuck(temporal_env):
    """Two series where the condition expects one number, a division by zero, a number
    where a boolean belongs: each is noted, the run ends, and the one real breach pages."""
    fleet = Fleet(measure_values=lambda n: [0.2, 0.3])
    pager = Pager(fleet)
    slos = [
        {"name": "one-number", "provider": PROM, "successCondition": "result < 0.01"},
        {"name": "by-zero", "provider": PROM, "failureCondition": "result.size() / 0 == 1"},
        {"name": "not-a-bool", "provider": PROM, "successCondition": "result.size()"},
        {"name": "all-series", "provider": PROM, "successCondition": "result.all(r, r < 0.1)"},
    ]
    m = monitor(slos=slos)
    async with monitor_worker(temporal_env, pager) as tq, asyncio.timeout(30):
        result: MonitorResult = await temporal_env.client.execute_workflow(
            ServiceMonitorRun.run, m, id=f"monitor-run-{uuid.uuid4().hex}", task_queue=tq
        )
    kinds = {f.message.split(":")[0].split(" =")[0]: f.kind for f in result.findings}
    assert kinds == {
        "one-number": "inconclusive",
        "by-zero": "inconclusive",
        "not-a-bool": "inconclusive",
        "all-series": "slo",
    }
    messages = " | ".join(f.message for f in result.findings)
    assert "one-number: cannot be judged: 'result < 0.01' cannot be evaluated on [0.2, 0.3]" in (
        messages
    )
    assert "division by zero" in messages
    assert "'result.size()' must be true or false, got 2" in messages
    assert not result.healthy
    assert pager.firing() == ["all-series = 0.2, 0.3: not result.all(r, r < 0.1)"]


async def test_a_measurement_activity_that_keeps_failing_is_inconclusive_after_two_tries(
    temporal_env,
):
    def broken(n: int) -> list[float]:
        raise RuntimeError("provider client bug")

    def no_trend() -> list[SeriesTrend]:
        raise RuntimeError("trend bug")

    fleet = Fleet(measure_values=broken)
    leak = {"provider": PROM, "window": "10m", "minGrowthPerMinute": "10Mi"}
    pager = Pager(fleet, trend=no_trend)
    slo = {"name": "error-rate", "provider": PROM, "successCondition": "result < 0.01"}
    m = monitor(slos=[slo], memoryLeak=leak)
    async with monitor_worker(temporal_env, pager) as tq, asyncio.timeout(30):
        result: MonitorResult = await temporal_env.client.execute_workflow(
            ServiceMonitorRun.run, m, id=f"monitor-run-{uuid.uuid4().hex}", task_queue=tq
        )
    assert [f.kind for f in result.findings] == ["inconclusive", "inconclusive"]
    assert (
        "error-rate: cannot be measured: activity failed: RuntimeError: provider client bug"
        in result.findings[0].message
    )
    assert (
        "memory trend cannot be measured: activity failed: RuntimeError: trend bug"
        in result.findings[1].message
    )
    assert fleet.measurements == 2  # retry.MEASURE: one retry, then the finding
    assert pager.opened == []


async def test_the_healer_outlives_an_incident_it_could_not_open(temporal_env):
    fleet = Fleet(unhealthy={(STABLE[0], "v1")})
    pager = Pager(fleet)
    pager.intake_down = True
    m = monitor()
    async with monitor_worker(temporal_env, pager) as tq, asyncio.timeout(60):
        result = await (await start_healer(temporal_env, tq, m)).result()
    noted = [e.message for e in result.timeline if e.kind == "escalate"]
    assert len(noted) == 1
    assert noted[0].startswith(f"restart did not help: {STABLE[0]} ")
    assert noted[0].endswith("; could not open an incident: RuntimeError: frontend unavailable")
    assert pager.intake_attempts == 5  # retry.INTAKE
    assert result.timeline[-1].kind == "done"
