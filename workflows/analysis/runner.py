"""Run one AnalysisRun inside a workflow: each metric measures on its own timer.

The judging is ``workflows/analysis/run.py`` (pure) and which metrics run, with what filled
in, is ``workflows/analysis/plan.py``; this module only schedules the ``measure``
activity, records each measurement into the run, and stops every metric as soon as the
run is decided Failed or Error.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from activities.metrics.activities import MeasureInput, MeasureOutput
    from workflows.analysis.plan import PlannedMetric, plan
    from workflows.analysis.run import (
        AnalysisPhase,
        AnalysisRun,
        Measurement,
        MetricResult,
        handles_special_values,
        measurement_of,
        record,
        run_phase,
    )
    from workflows.core import retry, telemetry
    from workflows.core.durations import parse_duration
    from workflows.core.timeouts import ROUTER_HEARTBEAT
    from workflows.rollouts.spec import Rollout

RAW_VALUES = "analysis-raw-values"
"""Patch: a metric whose conditions handle NaN, ±Inf or no data (``isNaN(result)``,
``len(result) == 0``) is given them, as Argo does, instead of an Error measurement."""


async def run_analysis(rollout: Rollout, run: AnalysisRun, key: str) -> AnalysisPhase:
    """Measure every metric of ``run``'s templates until the run is decided; its phase.

    A run that already has results (carried into a continued-as-new canary) goes on from
    its counts."""
    metrics = plan(rollout, run.templates, run.args, run.dry_run, run.measurement_retention)
    if len(run.metrics) != len(metrics):
        run.metrics = [MetricResult(name=m.metric.name, dry_run=m.dry_run) for m in metrics]
    run.phase = AnalysisPhase.RUNNING
    tasks = [
        asyncio.create_task(_measure_until_done(run, i, m, f"{key}/{m.metric.name}"))
        for i, m in enumerate(metrics)
    ]
    try:
        await workflow.wait_condition(
            lambda: (
                all(t.done() for t in tasks)
                or run.phase in (AnalysisPhase.FAILED, AnalysisPhase.ERROR)
            )
        )
    finally:
        for task in tasks:
            task.cancel()
            # A measurement cancelled in flight ends in ActivityError(cancelled): it is
            # expected, and no one awaits it (no "exception was never retrieved" noise).
            task.add_done_callback(_retrieve)
    for task in tasks:
        if task.done() and not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]  # a bug, not a measurement
    return run.phase


def _retrieve(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()


async def _measure_until_done(
    run: AnalysisRun, index: int, planned: PlannedMetric, key: str
) -> None:
    metric = planned.metric
    number = run.metrics[index].count
    if metric.initial_delay and number == 0:
        await workflow.sleep(
            parse_duration(metric.initial_delay), summary=f"{metric.name}: initial delay"
        )
    timeout = timedelta(seconds=metric.provider.attempt_seconds + 5)
    raw = handles_special_values(metric) and workflow.patched(RAW_VALUES)
    while True:
        number += 1
        started = workflow.now()
        request = MeasureInput(
            metric=metric.name,
            provider=metric.provider,
            key=f"{key}/{number}",
            secrets=planned.secrets,
            raw_values=raw,
        )
        measurement = await _measure(request, planned, timeout, started)
        telemetry.measurement(metric.provider.kind, measurement.phase.value)
        run.metrics[index] = record(metric, run.metrics[index], measurement, planned.retention)
        run.phase = run_phase(run.metrics)
        if run.metrics[index].phase.completed:
            run.message = run.metrics[index].message or run.message
            return
        await workflow.sleep(
            parse_duration(metric.interval or "0s"), summary=f"{metric.name}: next measurement"
        )


async def _measure(
    request: MeasureInput, planned: PlannedMetric, timeout: timedelta, started: datetime
) -> Measurement:
    try:
        output = await workflow.execute_activity(
            "measure",
            request,
            result_type=MeasureOutput,
            start_to_close_timeout=timeout,
            # measure heartbeats while its query runs: a killed worker costs seconds.
            heartbeat_timeout=ROUTER_HEARTBEAT,
            retry_policy=retry.MEASURE,
            summary=f"measure {request.metric} #{request.key.rsplit('/', 1)[-1]}",
        )
    except ActivityError as exc:
        if is_cancelled_exception(exc):
            raise
        output = MeasureOutput(error=f"measurement failed: {exc.cause or exc}")
    return measurement_of(planned.metric, output, started, workflow.now())
