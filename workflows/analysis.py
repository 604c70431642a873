"""Argo AnalysisRun semantics as pure functions: classify a measurement, assess a metric,
combine metrics into a run phase. No I/O, no clocks: the workflow passes timestamps in.

A measurement is Successful if ``successCondition`` holds, Failed if ``failureCondition``
holds, Inconclusive if neither decides, and Error if the provider or the condition failed.
With only a success condition, "not successful" is Failed; with only a failure condition,
"not failed" is Successful; with neither, every value is Successful.

A metric becomes Failed when failures exceed ``failureLimit``, Inconclusive when
inconclusive results exceed ``inconclusiveLimit``, Error when consecutive errors exceed
``consecutiveErrorLimit``; once its planned ``count`` is reached it is Successful unless
one of those limits was crossed. The run's phase is its worst metric's phase.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from activities.model import Model
from workflows.conditions import ConditionError, evaluate_condition
from workflows.spec import Metric

MEASUREMENT_RETENTION = 10
"""Measurements kept per metric for status and history (Argo's default); counts stay exact."""


class AnalysisPhase(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCESSFUL = "Successful"
    FAILED = "Failed"
    ERROR = "Error"
    INCONCLUSIVE = "Inconclusive"

    @property
    def completed(self) -> bool:
        return self not in (AnalysisPhase.PENDING, AnalysisPhase.RUNNING)


_SEVERITY = {
    AnalysisPhase.SUCCESSFUL: 0,
    AnalysisPhase.RUNNING: 1,
    AnalysisPhase.PENDING: 2,
    AnalysisPhase.INCONCLUSIVE: 3,
    AnalysisPhase.ERROR: 4,
    AnalysisPhase.FAILED: 5,
}


class Measurement(Model):
    phase: AnalysisPhase
    value: list[float] = Field(default_factory=list)
    message: str | None = None
    started_at: datetime
    finished_at: datetime


class MetricResult(Model):
    name: str
    phase: AnalysisPhase = AnalysisPhase.PENDING
    measurements: list[Measurement] = Field(default_factory=list)
    count: int = 0
    successful: int = 0
    failed: int = 0
    inconclusive: int = 0
    error: int = 0
    consecutive_error: int = 0
    message: str | None = None


class AnalysisRun(Model):
    """One AnalysisRun: a step's blocking analysis or the background analysis."""

    name: str
    templates: list[str]
    phase: AnalysisPhase = AnalysisPhase.PENDING
    metrics: list[MetricResult] = Field(default_factory=list)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    message: str | None = None


def classify(metric: Metric, values: list[float]) -> tuple[AnalysisPhase, str | None]:
    """The phase of one measurement that produced ``values`` (Argo's EvaluateResult)."""
    success = failure = False
    try:
        if metric.success_condition:
            success = evaluate_condition(metric.success_condition, values)
        if metric.failure_condition:
            failure = evaluate_condition(metric.failure_condition, values)
    except ConditionError as exc:
        return AnalysisPhase.ERROR, str(exc)
    if not metric.success_condition and not metric.failure_condition:
        return AnalysisPhase.SUCCESSFUL, None
    if not metric.failure_condition:
        failure = not success
    elif not metric.success_condition:
        success = not failure
    if failure:
        cond = metric.failure_condition or f"not ({metric.success_condition})"
        return AnalysisPhase.FAILED, f"{cond} with result {_show(values)}"
    if not success:
        return AnalysisPhase.INCONCLUSIVE, f"neither condition held for result {_show(values)}"
    return AnalysisPhase.SUCCESSFUL, None


def record(metric: Metric, result: MetricResult, measurement: Measurement) -> MetricResult:
    """``result`` with ``measurement`` counted and the metric's phase reassessed."""
    updated = result.model_copy(deep=True)
    updated.count += 1
    updated.measurements = [*updated.measurements, measurement][-MEASUREMENT_RETENTION:]
    if measurement.phase is AnalysisPhase.ERROR:
        updated.error += 1
        updated.consecutive_error += 1
    else:
        updated.consecutive_error = 0
        if measurement.phase is AnalysisPhase.SUCCESSFUL:
            updated.successful += 1
        elif measurement.phase is AnalysisPhase.FAILED:
            updated.failed += 1
        elif measurement.phase is AnalysisPhase.INCONCLUSIVE:
            updated.inconclusive += 1
    updated.phase, updated.message = assess(metric, updated, measurement.message)
    return updated


def assess(
    metric: Metric, result: MetricResult, last_message: str | None = None
) -> tuple[AnalysisPhase, str | None]:
    """The metric's phase given its counters (Argo's assessMetricStatus)."""
    if result.count == 0:
        return AnalysisPhase.PENDING, None
    if result.consecutive_error > metric.consecutive_error_limit:
        return AnalysisPhase.ERROR, (
            f"{result.consecutive_error} consecutive errors exceed consecutiveErrorLimit "
            f"{metric.consecutive_error_limit}: {last_message}"
        )
    if result.failed > metric.failure_limit:
        return AnalysisPhase.FAILED, (
            f"{result.failed} failed measurements exceed failureLimit {metric.failure_limit}: "
            f"{last_message}"
        )
    if result.inconclusive > metric.inconclusive_limit:
        return AnalysisPhase.INCONCLUSIVE, (
            f"{result.inconclusive} inconclusive measurements exceed inconclusiveLimit "
            f"{metric.inconclusive_limit}"
        )
    planned = metric.planned_count
    if planned is not None and result.count >= planned:
        return AnalysisPhase.SUCCESSFUL, None
    return AnalysisPhase.RUNNING, None


def run_phase(metrics: list[MetricResult]) -> AnalysisPhase:
    """The worst metric phase: Successful < Running < Pending < Inconclusive < Error < Failed."""
    if not metrics:
        return AnalysisPhase.PENDING
    return max((m.phase for m in metrics), key=_SEVERITY.__getitem__)


def _show(values: list[float]) -> str:
    shown = [f"{v:.6g}" for v in values]
    return shown[0] if len(shown) == 1 else "[" + ", ".join(shown) + "]"
