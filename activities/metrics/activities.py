"""The ``measure`` activity: run one metric query, return numbers or an Error measurement.

Sync ``def``: the worker runs it on a thread pool. A provider failure (unreachable,
timeout, rejected query, no data, NaN) is returned in ``MeasureOutput.error`` rather than
raised, so the workflow records an Argo "Error" measurement at once and counts it against
``consecutiveErrorLimit``; a raise would instead be retried by Temporal for as long as the
retry policy allows. Only bugs raise. Set the activity's ``start_to_close_timeout`` above
the provider's ``timeout`` (10 s by default).
"""

from __future__ import annotations

import math
import time
from typing import ClassVar

import structlog
from temporalio import activity

from activities.heartbeat import keep_alive
from activities.metrics.base import MetricsProvider, MetricUnavailable
from activities.metrics.prometheus import PrometheusProvider, PrometheusProviderSpec
from activities.model import Model, OneOf

log = structlog.get_logger()


class MetricProviderSpec(OneOf):
    """One-of: exactly one provider kind is set (``provider: {prometheus: {...}}``)."""

    label: ClassVar[str] = "provider"

    prometheus: PrometheusProviderSpec | None = None


def provider_for(spec: MetricProviderSpec) -> tuple[MetricsProvider, str]:
    """The provider for ``spec`` and the (already rendered) query to give it."""
    if spec.prometheus is not None:
        return PrometheusProvider.from_spec(spec.prometheus), spec.prometheus.query
    raise AssertionError(f"MetricProviderSpec validator let through {spec!r}")  # unreachable


class MeasureInput(Model):
    """``metric`` names the analysis metric and ``key`` is the workflow's business key
    (``{workflow_id}/analysis-2/error-rate/7``); both are only for logs."""

    metric: str
    provider: MetricProviderSpec
    key: str


class MeasureOutput(Model):
    """``values`` (one per series, never NaN or Inf), or ``error`` saying why there are none."""

    values: list[float]
    error: str | None = None


def judge_values(values: list[float]) -> str | None:
    """Why ``values`` cannot be a measurement, or ``None`` when they can.

    NaN and Inf do not survive the JSON data converter, and ``result < 0.01`` on NaN says
    nothing, so both are Error measurements rather than values.
    """
    if not values:
        return "query returned no data"
    if any(math.isnan(v) for v in values):
        return "query returned NaN"
    if any(math.isinf(v) for v in values):
        return "query returned +Inf" if max(values) == math.inf else "query returned -Inf"
    return None


def _attempt() -> int | None:
    return activity.info().attempt if activity.in_activity() else None


@activity.defn(name="measure")
def measure(input: MeasureInput) -> MeasureOutput:
    """Run the metric's query once; an unusable answer is an ``error``, not an exception."""
    started = time.monotonic()
    provider, query = provider_for(input.provider)
    # Never the provider spec itself: an address may one day carry credentials.
    fields = {"key": input.key, "metric": input.metric, "provider": input.provider.kind}
    try:
        with keep_alive():
            values = provider.query(query)
    except MetricUnavailable as e:
        error: str | None = str(e)
        values = []
    else:
        error = judge_values(values)
    duration_ms = round((time.monotonic() - started) * 1000, 1)
    if error is not None:
        log.warning(
            "measure_error", error=error, attempt=_attempt(), duration_ms=duration_ms, **fields
        )
        return MeasureOutput(values=[], error=error)
    log.info("measure", values=values, attempt=_attempt(), duration_ms=duration_ms, **fields)
    return MeasureOutput(values=values)
