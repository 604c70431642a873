"""What monitor runs and the self-healer take, show and return."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from activities.model import Model
from workflows.core.timeline import Event
from workflows.incidents.models import AlertNotification
from workflows.monitors.spec import ServiceMonitor

HEALER_WORKFLOW_TYPE = "SelfHealer"
REPORT_SIGNAL = "report"

Problem = Literal["unresponsive", "memory-leak"]


class Finding(Model):
    """One thing a monitor run found wrong."""

    kind: Literal[
        "unresponsive",
        "memory-leak",
        "slo",
        "inconclusive",
        "certificate-expiry",
        "tls-handshake",
        "dns",
    ]
    message: str
    servers: list[str] = Field(default_factory=list)
    # Kubernetes Deployments to restart, as MonitoredDeployment.describe() names them.
    deployments: list[str] = Field(default_factory=list)
    # What a check measured, for machines (a certificate's notAfter, subject and issuer).
    details: dict[str, str] = Field(default_factory=dict)


class HealReport(Model):
    """A monitor run asking the healer to restart the servers and Deployments its findings
    name (unresponsive or leaking)."""

    run_id: str
    at: datetime
    findings: list[Finding]


class MonitorResult(Model):
    service: str
    environment: str
    healthy: bool
    findings: list[Finding] = Field(default_factory=list)
    actions: list[str] = Field(default_factory=list)


class HealerStatus(Model):
    """Query ``status`` of the self-healer and its result."""

    service: str
    environment: str
    restarts: list[datetime] = Field(default_factory=list)  # within the budget window
    max_restarts: int
    reports: int = 0
    incidents: list[str] = Field(default_factory=list)
    waiting_for: str | None = None
    timeline: list[Event] = Field(default_factory=list)


class HealerInput(Model):
    """``report`` is the report to handle first (``None`` after continuing as new with
    nothing pending); ``carried`` is the healer's state when it continued as new."""

    monitor: ServiceMonitor
    report: HealReport | None
    carried: HealerStatus | None = None
    reports_per_run: int = Field(default=500, ge=1)


def monitor_group_key(monitor: ServiceMonitor) -> str:
    """Incidents a monitor opens are one alert group per service and environment."""
    return f"monitor/{monitor.spec.service}/{monitor.spec.environment}"


def monitor_notification(
    monitor: ServiceMonitor, status: Literal["firing", "resolved"], summary: str
) -> AlertNotification:
    """The notification a monitor hands to the intake path (as Alertmanager would)."""
    spec = monitor.spec
    labels = {
        "alertname": "ServiceUnhealthy",
        "service": spec.service,
        "environment": spec.environment,
        "severity": "critical",
        "monitor": monitor.name,
    }
    return AlertNotification(
        status=status,
        group_key=monitor_group_key(monitor),
        group_labels={"alertname": "ServiceUnhealthy"},
        common_labels=labels,
        common_annotations={"summary": summary[:1000]},
        source="monitor",
    )


def healer_workflow_id(service: str, environment: str) -> str:
    return f"healer-{service}-{environment}"
