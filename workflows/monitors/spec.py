"""``kind: ServiceMonitor``: check a service on a schedule, heal it, open an incident.

```yaml
apiVersion: deployflow/v1
kind: ServiceMonitor
metadata: {name: checkout-production}
spec:
  service: checkout
  environment: production
  schedule:
    timeZone: Europe/Berlin
    businessHours: {days: [Mon, Tue, Wed, Thu, Fri], start: "09:00", end: "18:00", every: 5m}
    offHours: {every: 15m}
    runTimeout: 30m                  # a run still going after this is ended
  servers: [127.0.0.1:18001]        # host:port servers, probed by healthCheck; or
  deployments:                       # Kubernetes Deployments, judged by their pods' readiness
    - {context: prod-a, namespace: shop, name: checkout}
  healthCheck: {http: {path: /healthz}, failureThreshold: 3, periodSeconds: 1}
  slos:
    - name: error-rate
      provider: {prometheus: {address: http://127.0.0.1:19090, query: '...'}}
      successCondition: result[0] < 0.01
  certificates:                      # TLS handshake with SNI; days left vs minDaysLeft
    minDaysLeft: 14
    endpoints: [{host: checkout.example.com, port: 443}]
  dns:                               # each name resolves (to the expected addresses)
    names: [{name: checkout.example.com, expectedAddresses: [10.0.0.5]}]
  memoryLeak:
    provider: {prometheus: {address: ..., query: 'process_resident_memory_bytes{...}'}}
    window: 10m
    minGrowthPerMinute: 1Mi          # bytes per minute: 1048576, 512Ki, 1Mi, 2M ...
    minR2: 0.9                       # how steady the growth is (linear fit)
  selfHealing:
    platform: {command: {...}}       # how servers restart; Deployments restart through the API
    maxRestarts: 3
    per: 1h
    backoff: 1m                      # doubled after each restart
    verifyAfter: 30s
  incident:
    runbook: checkout-unhealthy      # a kind: Runbook document in the same file
```

A Deployment is healthy while the API server says every replica is available (the
``Available`` condition True and ``availableReplicas`` at ``replicas``); one in the middle
of a rollout is noted, not restarted. Self-healing restarts it as ``kubectl rollout
restart`` does and waits for the new pods (docs/kubernetes.md).

A monitor file holds one ServiceMonitor and any number of Runbook documents.
``load_monitor`` puts the runbook named by ``spec.incident.runbook`` into
``spec.incident.definition``, so the monitor is a self-contained workflow input.

Business hours run from ``start`` every ``every`` until ``end`` (exclusive); off-hours
runs are aligned to midnight. Cadences divide an hour (1m … 30m) or a day (1h … 24h)
evenly, so every hour and every day look the same.
"""

from __future__ import annotations

import re
from datetime import time, timedelta
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, ValidationError, model_validator

from activities.health.security_spec import CertificateCheck, DnsCheck
from activities.health.spec import HealthCheck
from activities.kubernetes.names import ContextName, DnsLabel
from activities.metrics.activities import MetricProviderSpec
from activities.metrics.trend import SeriesTrend
from activities.model import Model
from activities.platforms.base import Target
from activities.platforms.spec import (
    DeploymentName,
    DeploymentTarget,
    KubernetesPlatformSpec,
    PlatformSpec,
)
from workflows.core.durations import Duration, parse_duration
from workflows.core.spec import (
    Condition,
    Metadata,
    Name,
    SpecError,
    validation_problems,
    yaml_documents,
)
from workflows.core.windows import check_time_zone, parse_clock
from workflows.incidents.spec import Runbook, parse_runbooks
from workflows.promotion.spec import Clock

Day = Literal["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
WEEKDAYS: list[Day] = ["Mon", "Tue", "Wed", "Thu", "Fri"]
DAY_MINUTES = 24 * 60
MIN_LEAK_WINDOW = timedelta(seconds=10)
MIN_RUN_TIMEOUT = timedelta(seconds=10)
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


def cadence_minutes(every: str) -> int:
    """Whole minutes between two runs; ``ValueError`` unless they divide an hour or a day."""
    seconds = parse_duration(every).total_seconds()
    minutes, rest = divmod(round(seconds), 60)
    if rest or seconds != round(seconds) or minutes == 0:
        raise ValueError(f"must be whole minutes, got {every!r}")
    if 60 % minutes and (minutes % 60 or DAY_MINUTES % minutes):
        raise ValueError(
            f"must divide an hour (1m, 2m, 5m, 10m, 15m, 20m, 30m …) or a day "
            f"(1h, 2h, 3h, 4h, 6h, 8h, 12h, 24h) evenly, got {every!r}"
        )
    return minutes


def _check_cadence(value: str) -> str:
    cadence_minutes(value)
    return value


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


Cadence = Annotated[Duration, AfterValidator(_check_cadence)]
TimeZone = Annotated[str, AfterValidator(check_time_zone)]
Server = Annotated[str, AfterValidator(_check_server)]
Bytes = Annotated[float, BeforeValidator(_bytes), Field(gt=0, allow_inf_nan=False)]


def minute_of_day(clock: str) -> int:
    """``09:30`` → 570; ``24:00`` → 1440."""
    parsed = parse_clock(clock)
    return DAY_MINUTES if parsed == time.max else parsed.hour * 60 + parsed.minute


class BusinessHours(Model):
    days: list[Day] = Field(default_factory=lambda: list(WEEKDAYS), min_length=1)
    start: Clock = "09:00"
    end: Clock = "18:00"
    every: Cadence

    @model_validator(mode="after")
    def _ordered(self) -> BusinessHours:
        if minute_of_day(self.end) <= minute_of_day(self.start):
            raise ValueError(f"end {self.end} must be after start {self.start} (same day)")
        repeated = sorted({d for d in self.days if self.days.count(d) > 1})
        if repeated:
            raise ValueError(f"days: {', '.join(repeated)} listed twice")
        return self


class OffHours(Model):
    every: Cadence


class MonitorSchedule(Model):
    """When runs start. Without ``offHours`` nothing runs outside business hours; without
    ``businessHours`` every hour of every day is off-hours."""

    time_zone: TimeZone = "UTC"
    business_hours: BusinessHours | None = None
    off_hours: OffHours | None = None
    run_timeout: Duration = "30m"

    @model_validator(mode="after")
    def _some_cadence(self) -> MonitorSchedule:
        if self.business_hours is None and self.off_hours is None:
            raise ValueError("set businessHours, offHours or both")
        if parse_duration(self.run_timeout) < MIN_RUN_TIMEOUT:
            raise ValueError(f"runTimeout: at least 10s, got {self.run_timeout}")
        return self

    def describe(self) -> str:
        """``every 5m Mon-Fri 09:00-18:00, every 15m otherwise (Europe/Berlin)``."""
        parts = []
        business = self.business_hours
        if business is not None:
            days = ",".join(business.days)
            if business.days == WEEKDAYS:
                days = "Mon-Fri"
            parts.append(f"every {business.every} {days} {business.start}-{business.end}")
        if self.off_hours is not None:
            tail = " otherwise" if business is not None else ""
            parts.append(f"every {self.off_hours.every}{tail}")
        else:
            parts.append("nothing otherwise")
        return f"{', '.join(parts)} ({self.time_zone})"


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


class SelfHealing(Model):
    """Restart an unhealthy or leaking service, at most ``maxRestarts`` per ``per``.
    ``platform`` restarts ``servers``; Deployments are restarted through the API."""

    platform: PlatformSpec | None = None
    max_restarts: int = Field(default=3, ge=1)
    per: Duration = "1h"
    backoff: Duration = "1m"
    verify_after: Duration = "30s"

    def backoff_after(self, restarts: int) -> timedelta:
        """The wait after the ``restarts``-th restart before another: 1m, 2m, 4m …"""
        if restarts <= 0:
            return timedelta(0)
        factor: int = 2 ** (restarts - 1)
        return parse_duration(self.backoff) * factor


class IncidentPolicy(Model):
    runbook: Name
    # Filled in by load_monitor from the file's Runbook documents; never written by users.
    definition: Runbook | None = None


class MonitorSpec(Model):
    service: Name
    environment: Name
    schedule: MonitorSchedule
    servers: list[Server] = Field(default_factory=list)
    deployments: list[MonitoredDeployment] = Field(default_factory=list)
    health_check: HealthCheck | None = None
    slos: list[Slo] = Field(default_factory=list)
    memory_leak: MemoryLeak | None = None
    certificates: CertificateCheck | None = None
    dns: DnsCheck | None = None
    self_healing: SelfHealing | None = None
    incident: IncidentPolicy | None = None


class ServiceMonitor(Model):
    api_version: Literal["deployflow/v1"]
    kind: Literal["ServiceMonitor"]
    metadata: Metadata
    spec: MonitorSpec

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def schedule_id(self) -> str:
        return monitor_schedule_id(self.metadata.name)

    @property
    def runbook(self) -> Runbook | None:
        """The resolved incident runbook (``None`` without ``spec.incident``)."""
        return self.spec.incident.definition if self.spec.incident else None


def monitor_schedule_id(name: str) -> str:
    return f"monitor-{name}"


def describe(monitor: ServiceMonitor) -> str:
    """One line: what is checked, how often, what happens when it fails."""
    spec = monitor.spec
    checks = []
    if spec.health_check is not None:
        checks.append(f"{spec.health_check.kind} health on {len(spec.servers)} server(s)")
    if spec.deployments:
        checks.append(f"readiness of {', '.join(d.describe() for d in spec.deployments)}")
    if spec.slos:
        checks.append(f"SLOs {', '.join(s.name for s in spec.slos)}")
    if spec.memory_leak is not None:
        checks.append(f"memory leak over {spec.memory_leak.window}")
    if spec.certificates is not None:
        certificates = spec.certificates
        checks.append(
            f"certificates of {len(certificates.endpoints)} endpoint(s) "
            f"≥{certificates.min_days_left} days"
        )
    if spec.dns is not None:
        checks.append(f"DNS of {', '.join(n.name for n in spec.dns.names)}")
    actions = []
    if spec.self_healing is not None:
        healing = spec.self_healing
        actions.append(f"restart ≤{healing.max_restarts}/{healing.per}")
    if spec.incident is not None:
        actions.append(f"runbook {spec.incident.runbook}")
    then = f" → {', '.join(actions)}" if actions else ""
    return (
        f"{spec.service} in {spec.environment}: {'; '.join(checks)}; "
        f"{spec.schedule.describe()}{then}"
    )


def monitor_problems(monitor: ServiceMonitor) -> list[str]:
    """Cross-field checks the models cannot express; empty when the monitor is sound."""
    problems: list[str] = []
    spec = monitor.spec
    checks = (spec.health_check, spec.memory_leak, spec.certificates, spec.dns)
    if not spec.slos and not spec.deployments and all(c is None for c in checks):
        problems.append(
            "spec: nothing to check; set healthCheck, deployments, slos, memoryLeak, "
            "certificates or dns"
        )
    for server in sorted({s for s in spec.servers if spec.servers.count(s) > 1}):
        problems.append(f"spec.servers: {server} listed twice")
    named = [d.describe() for d in spec.deployments]
    for number, name in enumerate(named):
        if name in named[:number]:
            problems.append(f"spec.deployments[{number}]: {name} listed twice")
    names = [s.name for s in spec.slos]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"spec.slos: SLO {name!r} defined twice")
    if spec.health_check is not None and not spec.servers:
        problems.append(
            "spec.servers: healthCheck needs at least one server to probe "
            "(deployments are judged by their pods' readiness)"
        )
    if spec.self_healing is not None:
        problems += _healing_problems(spec, spec.self_healing)
    return problems


def _healing_problems(spec: MonitorSpec, healing: SelfHealing) -> list[str]:
    problems = []
    if not spec.servers and not spec.deployments:
        problems.append(
            "spec.servers: selfHealing needs at least one server or deployment to restart"
        )
    if spec.servers and spec.health_check is None:
        problems.append("spec.healthCheck: selfHealing verifies each restart with it; set one")
    platform = healing.platform
    if spec.servers and platform is None:
        problems.append("spec.selfHealing.platform: required to restart spec.servers")
    if platform is not None and platform.kubernetes is not None:
        problems.append(
            "spec.selfHealing.platform.kubernetes: name the Deployment in spec.deployments; "
            "it is restarted through the API"
        )
    command = platform.command if platform is not None else None
    if command is not None and command.restart is None:
        problems.append("spec.selfHealing.platform.command.restart: required by selfHealing")
    if spec.incident is None:
        problems.append(
            "spec.incident.runbook: required by selfHealing "
            "(the runbook to run when restarting does not help)"
        )
    return problems


def parse_monitor(documents: list[Any], source: str = "<monitor>") -> ServiceMonitor:
    """Validate parsed YAML documents: one ServiceMonitor, any number of Runbooks."""
    kinds = [d.get("kind") if isinstance(d, dict) else None for d in documents]
    problems = [
        f"document {number}: kind must be ServiceMonitor or Runbook, got "
        f"{kind if isinstance(document, dict) else type(document).__name__!r}"
        for number, (document, kind) in enumerate(zip(documents, kinds, strict=True), start=1)
        if document is not None and kind not in ("ServiceMonitor", "Runbook")
    ]
    monitors = [d for d, kind in zip(documents, kinds, strict=True) if kind == "ServiceMonitor"]
    if len(monitors) != 1:
        problems.append(
            f"(top level): expected exactly one kind: ServiceMonitor, found {len(monitors)}"
        )
        raise SpecError(source, problems)
    runbooks: list[Runbook] = []
    if "Runbook" in kinds:
        # Non-runbooks become None so parse_runbooks numbers documents as the file does.
        only_runbooks = [
            d if k == "Runbook" else None for d, k in zip(documents, kinds, strict=True)
        ]
        try:
            runbooks = parse_runbooks(only_runbooks, source)
        except SpecError as exc:
            problems += exc.problems
    spec = monitors[0].get("spec")
    incident = spec.get("incident") if isinstance(spec, dict) else None
    if isinstance(incident, dict) and "definition" in incident:
        problems.append(
            "spec.incident.definition: set from the Runbook named by spec.incident.runbook; "
            "remove it"
        )
    try:
        monitor = ServiceMonitor.model_validate(monitors[0])
    except ValidationError as exc:
        raise SpecError(source, problems + validation_problems(exc)) from None
    problems += monitor_problems(monitor)
    if monitor.spec.incident is not None:
        problems += _resolve_runbook(monitor, monitor.spec.incident, runbooks)
    if problems:
        raise SpecError(source, problems)
    return monitor


def _resolve_runbook(
    monitor: ServiceMonitor, incident: IncidentPolicy, runbooks: list[Runbook]
) -> list[str]:
    by_name = {r.name: r for r in runbooks}
    runbook = by_name.get(incident.runbook)
    if runbook is None:
        have = ", ".join(sorted(by_name)) or "none in this file"
        return [
            f"spec.incident.runbook: no kind: Runbook named {incident.runbook!r} (have: {have})"
        ]
    problems = []
    for field in ("service", "environment"):
        theirs, ours = getattr(runbook.spec, field), getattr(monitor.spec, field)
        if theirs is not None and theirs != ours:
            problems.append(
                f"spec.incident.runbook: runbook {runbook.name!r} is for {field} {theirs!r}, "
                f"this monitor watches {ours!r}"
            )
    incident.definition = runbook
    return problems


def load_monitor(text: str, source: str = "<monitor>") -> ServiceMonitor:
    """Parse and validate a monitor file's text (YAML, several documents)."""
    return parse_monitor(yaml_documents(text, source), source)
