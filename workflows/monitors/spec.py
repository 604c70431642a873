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

A monitor file holds one ServiceMonitor and any number of Runbook documents.
``load_monitor`` puts the runbook named by ``spec.incident.runbook`` into
``spec.incident.definition``, so the monitor is a self-contained workflow input.
``spec.schedule`` is in ``cadence.py``; servers, deployments, SLOs and the memory leak are
in ``checks.py``. Self-healing restarts a Deployment as ``kubectl rollout restart`` does
and waits for the new pods (docs/kubernetes.md).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from pydantic import Field, ValidationError

from activities.health.security_spec import CertificateCheck, DnsCheck
from activities.health.spec import HealthCheck
from activities.model import Model
from activities.platforms.spec import PlatformSpec
from workflows.core.durations import Duration, parse_duration
from workflows.core.spec import Metadata, Name, SpecError, validation_problems, yaml_documents
from workflows.incidents.spec import Runbook, parse_runbooks
from workflows.monitors.cadence import MonitorSchedule
from workflows.monitors.checks import MemoryLeak, MonitoredDeployment, Server, Slo


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
