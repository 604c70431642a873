"""The ``memory_trend`` activity: a Prometheus range query and a straight line through each series.

A leak is memory that grows, and grows steadily: the least-squares slope says how fast,
R² how steadily (a sawtooth of garbage collections has a small R², a leak a large one).
``linear_fit`` is the pure part; the activity only fetches points.

Sync ``def`` (run on the worker's thread pool). Like ``measure``, a provider failure is
returned in ``MemoryTrendOutput.error``, not raised: one attempt bounded by the provider's
``timeout``, no retries of the client's own. Set ``start_to_close_timeout`` above it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import structlog
from pydantic import Field, model_validator
from temporalio import activity

from activities.metrics.activities import MetricProviderSpec
from activities.metrics.base import MetricUnavailable
from activities.metrics.prometheus import PrometheusClient
from activities.model import Model

log = structlog.get_logger()

POINTS_PER_WINDOW = 30
MIN_FIT_POINTS = 3  # two points always lie on a line: R² = 1 would say nothing


class LinearFit(Model):
    """``value ≈ intercept + slope · t`` (``t`` in seconds since the first point)."""

    slope: float
    intercept: float
    r2: float


def linear_fit(points: Sequence[tuple[float, float]]) -> LinearFit | None:
    """Least-squares line through ``(t, value)`` points; ``None`` for fewer than 3 points
    or when every ``t`` is the same. A constant series fits perfectly: slope 0, R² 1."""
    if len(points) < MIN_FIT_POINTS:
        return None
    t0 = points[0][0]
    xs = [t - t0 for t, _ in points]  # shifted: unix seconds squared lose precision
    ys = [v for _, v in points]
    n = len(points)
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mean_x) ** 2 for x in xs)
    if sxx == 0:
        return None
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True))
    slope = sxy / sxx
    intercept = mean_y - slope * mean_x
    ss_tot = sum((y - mean_y) ** 2 for y in ys)
    ss_res = sum((y - (intercept + slope * x)) ** 2 for x, y in zip(xs, ys, strict=True))
    r2 = 1.0 if ss_tot == 0 else max(0.0, 1.0 - ss_res / ss_tot)
    return LinearFit(slope=slope, intercept=intercept, r2=r2)


class MemoryTrendInput(Model):
    """``key`` is the workflow's business key, only for logs."""

    provider: MetricProviderSpec
    window_seconds: float = Field(gt=0)
    step_seconds: float | None = Field(default=None, gt=0)  # default: window / 30, ≥ 1 s
    key: str

    @model_validator(mode="after")
    def _default_step(self) -> MemoryTrendInput:
        if self.step_seconds is None:
            self.step_seconds = max(1.0, self.window_seconds / POINTS_PER_WINDOW)
        return self


class SeriesTrend(Model):
    """One series' fit. ``slopePerSecond`` and ``r2`` are ``None`` below 3 points."""

    labels: dict[str, str]
    points: int
    first: float | None
    last: float | None
    slope_per_second: float | None
    r2: float | None


class MemoryTrendOutput(Model):
    series: list[SeriesTrend] = Field(default_factory=list)
    error: str | None = None


def trend_of(labels: dict[str, str], points: Sequence[tuple[float, float]]) -> SeriesTrend:
    """The fit of one series; NaN and ±Inf samples (stale, division by zero) are left out."""
    usable = [(t, v) for t, v in points if math.isfinite(v)]
    fit = linear_fit(usable)
    return SeriesTrend(
        labels=labels,
        points=len(usable),
        first=usable[0][1] if usable else None,
        last=usable[-1][1] if usable else None,
        slope_per_second=fit.slope if fit else None,
        r2=fit.r2 if fit else None,
    )


@activity.defn(name="memory_trend")
def memory_trend(input: MemoryTrendInput) -> MemoryTrendOutput:
    """Fit a line through each series over the last ``windowSeconds``."""
    started = time.monotonic()
    fields = {"key": input.key, "provider": input.provider.kind}
    spec = input.provider.prometheus
    assert input.step_seconds is not None  # set by the validator
    if spec is None:
        return MemoryTrendOutput(error=f"provider {input.provider.kind} has no range queries")
    end = datetime.now(UTC)
    start = end - timedelta(seconds=input.window_seconds)
    try:
        raw = PrometheusClient(spec).range(spec.query, start, end, input.step_seconds)
    except MetricUnavailable as e:
        log.warning("memory_trend_error", error=str(e), **fields)
        return MemoryTrendOutput(error=str(e))
    if not raw:
        return MemoryTrendOutput(error="query returned no data")
    series = [trend_of(labels, points) for labels, points in raw]
    log.info(
        "memory_trend",
        series=len(series),
        duration_ms=round((time.monotonic() - started) * 1000, 1),
        **fields,
    )
    return MemoryTrendOutput(series=series)
