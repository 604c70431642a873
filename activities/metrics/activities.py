"""The ``measure`` activity: take one measurement, return a reading or an Error measurement.

Sync ``def``: the worker runs it on a thread pool. A provider failure (unreachable,
timeout, rejected query, no data, NaN) is returned in ``MeasureOutput.error`` rather than
raised, so the workflow records an Argo "Error" measurement at once and counts it against
``consecutiveErrorLimit``; a raise would instead be retried by Temporal for as long as the
retry policy allows. Only bugs raise. Set the activity's ``start_to_close_timeout`` above
``MetricProviderSpec.attempt_seconds``.

Secret args arrive as references (``secrets``) and are filled in here, on the worker; their
values are taken out of every message and log line again (``activities/metrics/secrets.py``).
"""

from __future__ import annotations

import math
import time
from typing import Any, ClassVar

import structlog
from pydantic import Field, model_validator
from temporalio import activity

from activities.heartbeat import keep_alive
from activities.metrics import secrets as secret_store
from activities.metrics.base import MetricsProvider, MetricUnavailable, Reading
from activities.metrics.judge_spec import JudgeProviderSpec
from activities.metrics.prometheus import PrometheusProvider
from activities.metrics.prometheus_spec import PrometheusProviderSpec
from activities.metrics.secrets import SecretKeyRef, SecretMissing
from activities.metrics.web import WebProvider, WebProviderSpec
from activities.model import Model, OneOf

log = structlog.get_logger()

ARGO_ONLY = {
    "kayenta": "asks a Kayenta server; provider.judge judges canary and baseline here",
    "datadog": "Datadog's API",
    "newRelic": "New Relic's API",
    "wavefront": "Wavefront's API",
    "cloudWatch": "AWS CloudWatch",
    "graphite": "Graphite's API",
    "influxdb": "InfluxDB's API",
    "skywalking": "SkyWalking's API",
    "job": "a Kubernetes Job; a web metric can call a check instead",
    "plugin": "Go plugins of the Argo controller",
}
"""Argo Rollouts' other metric providers, refused by name rather than as unknown fields."""


class MetricProviderSpec(OneOf):
    """One-of: exactly one provider kind is set (``provider: {prometheus: {...}}``)."""

    label: ClassVar[str] = "provider"

    prometheus: PrometheusProviderSpec | None = None
    web: WebProviderSpec | None = None
    judge: JudgeProviderSpec | None = None

    @model_validator(mode="before")
    @classmethod
    def _argo_only(cls, data: Any) -> Any:
        for name in data if isinstance(data, dict) else ():
            if name in ARGO_ONLY:
                raise ValueError(
                    f"{name}: not supported: Argo's {name} provider ({ARGO_ONLY[name]}); "
                    "deployflow measures with prometheus, web and judge"
                )
        return data

    @property
    def attempt_seconds(self) -> float:
        """The longest one measurement may take (what the activity timeout must exceed)."""
        if self.prometheus is not None:
            return self.prometheus.timeout
        if self.web is not None:
            return float(self.web.timeout_seconds)
        assert self.judge is not None
        return self.judge.prometheus.timeout * 2 * len(self.judge.metrics)


def provider_for(spec: MetricProviderSpec) -> MetricsProvider:
    """The provider for ``spec`` (its placeholders and secrets already filled in)."""
    if spec.prometheus is not None:
        return PrometheusProvider(spec.prometheus)
    if spec.web is not None:
        return WebProvider(spec.web)
    if spec.judge is not None:
        # Imported on use: scipy takes a while to load, and workflows import this module.
        from activities.metrics.judge_provider import JudgeProvider

        return JudgeProvider(spec.judge)
    raise AssertionError(f"MetricProviderSpec validator let through {spec!r}")  # unreachable


class MeasureInput(Model):
    """``metric`` names the analysis metric and ``key`` is the workflow's business key
    (``{workflow_id}/analysis-2/error-rate/7``); both are only for logs. ``secrets`` maps
    the secret args the provider spec names (``{{args.NAME}}``) to where the worker finds
    them. ``rawValues``: NaN, ±Inf and no data are returned as they are (the metric's
    conditions handle them) instead of as an Error measurement."""

    metric: str
    provider: MetricProviderSpec
    key: str
    secrets: dict[str, SecretKeyRef] = Field(default_factory=dict)
    raw_values: bool = False


class MeasureOutput(Reading):
    """A ``Reading``, or ``error`` saying why there is none."""

    error: str | None = None


def judge_values(values: list[float]) -> str | None:
    """Why ``values`` cannot be a measurement, or ``None`` when they can.

    ``result < 0.01`` on NaN or on no data says nothing, so both are Error measurements
    rather than values (unless the conditions ask for them: ``rawValues``).
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
    """Take the metric's measurement once; an unusable answer is an ``error``, not an exception."""
    started = time.monotonic()
    # Never the provider spec itself: an address may carry credentials, a URL a secret.
    fields = {"key": input.key, "metric": input.metric, "provider": input.provider.kind}
    shown: list[str] = []
    try:
        values = {name: secret_store.resolve(ref) for name, ref in input.secrets.items()}
        shown = list(values.values())
        provider = provider_for(_with_secrets(input.provider, values))
        with keep_alive():
            reading = provider.measure()
    except (MetricUnavailable, SecretMissing) as e:
        error: str | None = secret_store.redact(str(e), shown)
        reading = Reading()
    else:
        numeric = reading.result is None and reading.phase is None
        error = judge_values(reading.values) if numeric and not input.raw_values else None
    duration_ms = round((time.monotonic() - started) * 1000, 1)
    if error is not None:
        log.warning(
            "measure_error", error=error, attempt=_attempt(), duration_ms=duration_ms, **fields
        )
        return MeasureOutput(error=error)
    log.info(
        "measure", values=reading.values, attempt=_attempt(), duration_ms=duration_ms, **fields
    )
    if shown:  # a secret echoed back (a query, a body) is not recorded either
        reading = Reading.model_validate(secret_store.redact_value(reading.model_dump(), shown))
    return MeasureOutput(**dict(reading))


def _with_secrets(spec: MetricProviderSpec, values: dict[str, str]) -> MetricProviderSpec:
    if not values:
        return spec
    document = secret_store.render_secrets(spec.model_dump(mode="json"), values)
    return MetricProviderSpec.model_validate(document)
