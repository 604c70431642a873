"""Run one AnalysisRun inside a workflow: each metric measures on its own timer.

The judging is ``workflows/analysis.py`` (pure); this module only schedules the
``measure`` activity, records each measurement into the run, and stops every metric as
soon as the run is decided Failed or Error.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from activities.metrics.activities import MeasureInput, MeasureOutput, MetricProviderSpec
    from workflows import retry
    from workflows.analysis import (
        AnalysisPhase,
        AnalysisRun,
        Measurement,
        MetricResult,
        classify,
        record,
        run_phase,
    )
    from workflows.durations import parse_duration
    from workflows.spec import Metric, Rollout, render_placeholders
    from workflows.timeouts import ROUTER_HEARTBEAT


async def run_analysis(rollout: Rollout, run: AnalysisRun, key: str) -> AnalysisPhase:
    """Measure every metric of ``run``'s templates until the run is decided; its phase.

    A run that already has results (carried into a continued-as-new canary) goes on from
    its counts."""
    metrics = [m for name in run.templates for m in rollout.template(name).metrics]
    if len(run.metrics) != len(metrics):
        run.metrics = [MetricResult(name=m.name) for m in metrics]
    run.phase = AnalysisPhase.RUNNING
    tasks = [
        asyncio.create_task(_measure_until_done(rollout, run, i, m, f"{key}/{m.name}"))
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
    rollout: Rollout, run: AnalysisRun, index: int, metric: Metric, key: str
) -> None:
    number = run.metrics[index].count
    if metric.initial_delay and number == 0:
        await workflow.sleep(
            parse_duration(metric.initial_delay), summary=f"{metric.name}: initial delay"
        )
    provider = _rendered(metric.provider, rollout)
    timeout = timedelta(seconds=(provider.prometheus.timeout if provider.prometheus else 10) + 5)
    while True:
        number += 1
        started = workflow.now()
        phase, values, message = await _measure(
            MeasureInput(metric=metric.name, provider=provider, key=f"{key}/{number}"),
            metric,
            timeout,
        )
        measurement = Measurement(
            phase=phase,
            value=values,
            message=message,
            started_at=started,
            finished_at=workflow.now(),
        )
        run.metrics[index] = record(metric, run.metrics[index], measurement)
        run.phase = run_phase(run.metrics)
        if run.metrics[index].phase.completed:
            run.message = run.metrics[index].message or run.message
            return
        await workflow.sleep(
            parse_duration(metric.interval or "0s"), summary=f"{metric.name}: next measurement"
        )


async def _measure(
    request: MeasureInput, metric: Metric, timeout: timedelta
) -> tuple[AnalysisPhase, list[float], str | None]:
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
        return AnalysisPhase.ERROR, [], f"measurement failed: {exc.cause or exc}"
    if output.error:
        return AnalysisPhase.ERROR, output.values, output.error
    phase, message = classify(metric, output.values)
    return phase, output.values, message


def _rendered(provider: MetricProviderSpec, rollout: Rollout) -> MetricProviderSpec:
    if provider.prometheus is None:
        return provider
    query = render_placeholders(provider.prometheus.query, rollout)
    return provider.model_copy(
        update={"prometheus": provider.prometheus.model_copy(update={"query": query})}
    )
