"""The worker's Prometheus metrics: the SDK's own and deployflow's, on one endpoint.

The SDK serves ``/metrics`` itself once its runtime is built with a ``PrometheusConfig``
(``runtime_with_metrics``): pollers, task slots, schedule-to-start and execution latencies
of workflow and activity tasks by ``activity_type``/``workflow_type``, sticky cache, RPCs.
deployflow's metrics are recorded through the same runtime's metric meter, so they land on
that endpoint too; a second HTTP server (``prometheus_client``) would be a second port to
scrape and could not see the SDK's. Workflows record theirs through
``workflow.metric_meter()`` (``workflows/core/telemetry.py``), which is silent during replay;
activities through ``activity.metric_meter()``, here, in a worker interceptor, so the
activity modules stay free of metrics code.

Names as exported (counters end in ``_total``, durations are seconds):

    deployflow_rollout_phases_total{strategy, phase}                 workflows/core/telemetry.py
    deployflow_analysis_measurements_total{provider, phase}          workflows/core/telemetry.py
    deployflow_traffic_shift_duration_seconds{router, outcome}       histogram, set_weight
    deployflow_pages_total{action, outcome}                          PagerDuty events, page
    temporal_activity_execution_latency_seconds{activity_type, ...}  the SDK's
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from temporalio import activity
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

TRAFFIC_SHIFT = "deployflow_traffic_shift_duration"
PAGES = "deployflow_pages"
SHIFT_BUCKETS_S = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""A shift takes < 1 ms on HAProxy's runtime API, ~20 ms for an NGINX test + reload, seconds
for a Kubernetes rollout of a selector: the SDK's default buckets start at 50 ms."""


def runtime_with_metrics(bind_address: str) -> Runtime:
    """A runtime whose metrics (the SDK's and every metric meter's) are served at
    ``http://bind_address/metrics`` in Prometheus's conventions."""
    return Runtime(
        telemetry=TelemetryConfig(
            metrics=PrometheusConfig(
                bind_address=bind_address,
                counters_total_suffix=True,
                unit_suffix=True,
                durations_as_seconds=True,
                histogram_bucket_overrides={TRAFFIC_SHIFT: SHIFT_BUCKETS_S},
            )
        )
    )


def _outcome(error: BaseException | None) -> str:
    return "ok" if error is None else "failed"


def _shift(input: Any, error: BaseException | None, elapsed: timedelta) -> None:
    activity.metric_meter().create_histogram_timedelta(
        TRAFFIC_SHIFT, "Traffic shifts (set_weight attempts), by router kind", "duration"
    ).record(elapsed, {"router": input.router.kind, "outcome": _outcome(error)})


def _page(input: Any, error: BaseException | None, elapsed: timedelta) -> None:
    activity.metric_meter().create_counter(
        PAGES, "PagerDuty events sent (page attempts), by action"
    ).add(1, {"action": input.action, "outcome": _outcome(error)})


Recorder = Callable[[Any, BaseException | None, timedelta], None]
RECORDERS: dict[str, Recorder] = {"set_weight": _shift, "page": _page}
"""What each measured activity type records, from its input and how it ended."""


class ActivityMetrics(Interceptor):
    """Records ``RECORDERS``' metrics around each attempt of those activities."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Measured(next)


class _Measured(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        recorder = RECORDERS.get(activity.info().activity_type)
        if recorder is None or not input.args:
            return await super().execute_activity(input)
        started = time.monotonic()
        try:
            result = await super().execute_activity(input)
        except BaseException as error:
            recorder(input.args[0], error, timedelta(seconds=time.monotonic() - started))
            raise
        recorder(input.args[0], None, timedelta(seconds=time.monotonic() - started))
        return result
