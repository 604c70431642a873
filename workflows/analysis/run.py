"""Argo AnalysisRun semantics as pure functions: classify a measurement, assess a metric,
combine metrics into a run phase. No I/O, no clocks: the workflow passes timestamps in.

A measurement is Successful if ``successCondition`` holds, Failed if ``failureCondition``
holds, Inconclusive if neither decides, and Error if the provider or the condition failed.
With only a success condition, "not successful" is Failed; with only a failure condition,
"not failed" is Successful; with neither, every value is Successful.

A metric becomes Failed when failures exceed ``failureLimit`` (-1: never), Inconclusive
when inconclusive results exceed ``inconclusiveLimit``, Error when consecutive errors
exceed ``consecutiveErrorLimit``, Successful as soon as ``consecutiveSuccessLimit``
measurements in a row were; once its planned ``count`` is reached it is Successful unless
one of those limits was crossed (with a ``consecutiveSuccessLimit`` not reached:
Inconclusive, or Failed when ``failureLimit`` is -1). The run's phase is its worst
metric's phase; a ``dryRun`` metric is measured and shown but never counts.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import ConfigDict, Field, JsonValue

from activities.metrics.activities import MeasureOutput
from activities.metrics.judge_spec import Judgement
from activities.model import Model
from workflows.analysis.spec import (
    DEFAULT_RETENTION,
    Argument,
    Metric,
    MetricSelector,
    RetentionRule,
    StepAnalysis,
)
from workflows.core.conditions import ConditionError, evaluate_condition

MEASUREMENT_RETENTION = DEFAULT_RETENTION
"""Measurements kept per metric for status and history unless ``measurementRetention``
says otherwise (Argo's default); counts stay exact."""
_SPECIAL_VALUES = re.compile(r"\b(?:isNaN|isInf|isNil|default|len|size)\s*\(")


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
    """One measurement: its phase, what was measured (``value``: numbers, NaN included;
    ``result``: a web metric's JSON), and why (``message``, ``judgement``)."""

    model_config = ConfigDict(**Model.model_config, ser_json_inf_nan="strings")

    phase: AnalysisPhase
    value: list[float] = Field(default_factory=list)
    result: JsonValue = None
    message: str | None = None
    started_at: datetime
    finished_at: datetime
    metadata: dict[str, str] = Field(default_factory=dict)
    judgement: Judgement | None = None


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
    consecutive_success: int = 0
    message: str | None = None
    dry_run: bool = False
    """Measured and shown, never deciding the run (Argo's ``dryRun``)."""


class AnalysisRun(Model):
    """One AnalysisRun: a step's blocking analysis or the background analysis, with the
    reference's ``args``, ``dryRun`` and ``measurementRetention`` (as Argo's AnalysisRun
    spec holds them; secret args only by reference)."""

    name: str
    templates: list[str]
    phase: AnalysisPhase = AnalysisPhase.PENDING
    metrics: list[MetricResult] = Field(default_factory=list)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    message: str | None = None
    args: list[Argument] = Field(default_factory=list)
    dry_run: list[MetricSelector] = Field(default_factory=list)
    measurement_retention: list[RetentionRule] = Field(default_factory=list)


def new_run(name: str, analysis: StepAnalysis, started_at: datetime) -> AnalysisRun:
    """The AnalysisRun for a rollout's reference to templates."""
    return AnalysisRun(
        name=name,
        templates=[t.template_name for t in analysis.templates],
        started_at=started_at,
        args=analysis.args,
        dry_run=analysis.dry_run,
        measurement_retention=analysis.measurement_retention,
    )


def handles_special_values(metric: Metric) -> bool:
    """Whether the conditions ask for NaN, ±Inf and empty results (``isNaN(result)``,
    ``len(result) == 0``, ...) rather than having them as Error measurements."""
    text = f"{metric.success_condition or ''} {metric.failure_condition or ''}"
    return _SPECIAL_VALUES.search(text) is not None


def classify(
    metric: Metric,
    values: list[float],
    result: JsonValue = None,
    decided: AnalysisPhase | None = None,
) -> tuple[AnalysisPhase, str | None]:
    """The phase of one measurement (Argo's EvaluateResult): of ``values`` (or ``result``,
    a web metric's JSON) under the conditions; with none, the provider's own verdict
    (``decided``: the baseline judge's) or Successful."""
    measured: Any = values if result is None else result
    success = failure = False
    try:
        if metric.success_condition:
            success = evaluate_condition(metric.success_condition, measured)
        if metric.failure_condition:
            failure = evaluate_condition(metric.failure_condition, measured)
    except ConditionError as exc:
        return AnalysisPhase.ERROR, str(exc)
    if not metric.success_condition and not metric.failure_condition:
        return decided or AnalysisPhase.SUCCESSFUL, None
    if not metric.failure_condition:
        failure = not success
    elif not metric.success_condition:
        success = not failure
    if failure:
        cond = metric.failure_condition or f"not ({metric.success_condition})"
        return AnalysisPhase.FAILED, f"{cond} with result {_show(measured)}"
    if not success:
        return AnalysisPhase.INCONCLUSIVE, f"neither condition held for result {_show(measured)}"
    return AnalysisPhase.SUCCESSFUL, None


def measurement_of(
    metric: Metric, output: MeasureOutput, started_at: datetime, finished_at: datetime
) -> Measurement:
    """The measurement the ``measure`` activity's ``output`` makes for ``metric``."""
    message: str | None = output.error
    if output.error:
        phase = AnalysisPhase.ERROR
    else:
        decided = AnalysisPhase(output.phase) if output.phase else None
        phase, message = classify(metric, output.values, output.result, decided)
        if output.judgement is not None:
            message = output.judgement.summary() + (f"; {message}" if message else "")
    return Measurement(
        phase=phase,
        value=output.values,
        result=output.result,
        message=message,
        started_at=started_at,
        finished_at=finished_at,
        metadata=output.metadata,
        judgement=output.judgement,
    )


def record(
    metric: Metric,
    result: MetricResult,
    measurement: Measurement,
    retention: int = MEASUREMENT_RETENTION,
) -> MetricResult:
    """``result`` with ``measurement`` counted (the last ``retention`` kept) and the
    metric's phase reassessed."""
    updated = result.model_copy(deep=True)
    updated.count += 1
    updated.measurements = [*updated.measurements, measurement][-retention:]
    successful = measurement.phase is AnalysisPhase.SUCCESSFUL
    updated.consecutive_success = updated.consecutive_success + 1 if successful else 0
    if measurement.phase is AnalysisPhase.ERROR:
        updated.error += 1
        updated.consecutive_error += 1
    else:
        updated.consecutive_error = 0
        if successful:
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
    if 0 <= metric.failure_limit < result.failed:
        return AnalysisPhase.FAILED, (
            f"{result.failed} failed measurements exceed failureLimit {metric.failure_limit}: "
            f"{last_message}"
        )
    if result.inconclusive > metric.inconclusive_limit:
        return AnalysisPhase.INCONCLUSIVE, (
            f"{result.inconclusive} inconclusive measurements exceed inconclusiveLimit "
            f"{metric.inconclusive_limit}"
        )
    wanted = metric.consecutive_success_limit
    if wanted and result.consecutive_success >= wanted:
        return AnalysisPhase.SUCCESSFUL, None
    planned = metric.planned_count
    if planned is not None and result.count >= planned:
        if not wanted:
            return AnalysisPhase.SUCCESSFUL, None
        phase = AnalysisPhase.FAILED if metric.failure_limit < 0 else AnalysisPhase.INCONCLUSIVE
        return phase, (
            f"count {planned} reached without {wanted} successful measurements in a row "
            "(consecutiveSuccessLimit)"
        )
    return AnalysisPhase.RUNNING, None


def run_phase(metrics: list[MetricResult]) -> AnalysisPhase:
    """The worst phase of the metrics that decide (not dryRun): Successful < Running <
    Pending < Inconclusive < Error < Failed."""
    if not metrics:
        return AnalysisPhase.PENDING
    deciding = [m.phase for m in metrics if not m.dry_run]
    worst = max(deciding, key=_SEVERITY.__getitem__) if deciding else AnalysisPhase.SUCCESSFUL
    if worst is AnalysisPhase.SUCCESSFUL and not all(m.phase.completed for m in metrics):
        return AnalysisPhase.RUNNING  # a dry-run metric is still measuring
    return worst


def _show(measured: Any) -> str:
    if isinstance(measured, list) and all(isinstance(v, float) for v in measured):
        shown = [f"{v:.6g}" for v in measured]
        return shown[0] if len(shown) == 1 else "[" + ", ".join(shown) + "]"
    text = json.dumps(measured, default=str)
    return text if len(text) <= 200 else text[:200] + "..."
