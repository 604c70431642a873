"""What a ServiceMonitor checks besides its health check, certificates and DNS (those
specs live with their probes in ``activities/health/``): its servers, its Kubernetes
Deployments, its SLOs and a memory leak.

A Deployment is healthy while the API server says every replica is available (the
``Available`` condition True and ``availableReplicas`` at ``replicas``); one in the middle
of a rollout is noted, not restarted.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from activities.kubernetes.names import ContextName, DnsLabel
from activities.metrics.activities import MetricProviderSpec
from activities.metrics.trend import SeriesTrend
from activities.model import Model
from activities.platforms.base import Target
from activities.platforms.spec import DeploymentName, DeploymentTarget, KubernetesPlatformSpec
from workflows.core.durations import Duration, parse_duration
from workflows.core.spec import Condition, Name

MIN_LEAK_WINDOW = timedelta(seconds=10)
_BYTE_UNITS = {
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}
_QUANTITY = re.compile(r"(\d+(?:\.\d+)?)\s*(Ki|Mi|Gi|Ti|k|M|G|T)?")


def _check_server(address: str) -> str:
    Target.parse(address)
    return address


def _bytes(value: Any) -> Any:
    """``1048576``, ``512Ki``, ``1Mi``, ``2M`` (Kubernetes quantities) → a number of bytes."""
    if not isinstance(value, str):
        return value
    match = _QUANTITY.fullmatch(value.strip())
    if match is None:
        raise ValueError(f"expected bytes like 1048576, 512Ki or 1Mi, got {value!r}")
    return float(match[1]) * _BYTE_UNITS[match[2] or ""]


Server = Annotated[str, AfterValidator(_check_server)]
Bytes = Annotated[float, BeforeValidator(_bytes), Field(gt=0, allow_inf_nan=False)]


class Slo(Model):
    """One query judged by Argo-style conditions over ``result`` (workflows/core/conditions.py)."""

    name: Name
    provider: MetricProviderSpec
    success_condition: Condition | None = None
    failure_condition: Condition | None = None

    @model_validator(mode="after")
    def _judged(self) -> Slo:
        if self.success_condition is None and self.failure_condition is None:
            raise ValueError("set successCondition, failureCondition or both")
        return self


class MemoryLeak(Model):
    """A leak is resident memory growing at least ``minGrowthPerMinute``, steadily
    (a least-squares line through the ``window`` explains ``minR2`` of the variation)."""

    provider: MetricProviderSpec
    window: Duration = "10m"
    min_growth_per_minute: Bytes
    min_r2: float = Field(default=0.9, ge=0, le=1)

    @model_validator(mode="after")
    def _long_enough(self) -> MemoryLeak:
        if self.window_seconds < MIN_LEAK_WINDOW.total_seconds():
            raise ValueError(f"window: at least 10s, got {self.window}")
        return self

    @property
    def window_seconds(self) -> float:
        return parse_duration(self.window).total_seconds()

    def is_leak(self, trend: SeriesTrend) -> bool:
        """Whether one series' fit shows a leak by this spec's thresholds."""
        if trend.slope_per_second is None or trend.r2 is None:
            return False
        growth = trend.slope_per_second * 60
        return growth >= self.min_growth_per_minute and trend.r2 >= self.min_r2


class MonitoredDeployment(Model):
    """A Kubernetes Deployment a monitor watches, in a context of the worker's kubeconfig."""

    name: DeploymentName
    namespace: DnsLabel = "default"
    context: ContextName | None = None

    def platform(self) -> KubernetesPlatformSpec:
        """The platform spec the Kubernetes activities take for this Deployment."""
        target = DeploymentTarget(name=self.name, namespace=self.namespace, context=self.context)
        return KubernetesPlatformSpec(deployment=target)

    def describe(self) -> str:
        """``prod-a/shop/deployment/checkout``, as the platform names it."""
        return self.platform().deployment.describe()
