"""What an incident workflow takes, shows and accepts (the JSON users see in the Temporal UI).

An incident is one Alertmanager alert group (or one unhealthy service seen by a monitor):
its workflow id comes from the group key, so repeated notifications of the group reach the
same run (signal-with-start) and never open a second incident or page twice.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import Field

from activities.model import Model
from activities.notify.models import SlackMessage
from workflows.core.timeline import Event
from workflows.incidents.spec import Runbook

ALERT_LIMIT = 50
"""Alerts of a group kept per notification; Alertmanager can send thousands."""

WORKFLOW_TYPE = "IncidentRunbook"
FIRING_SIGNAL = "alert_firing"
RESOLVED_SIGNAL = "alert_resolved"


class Alert(Model):
    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    fingerprint: str | None = None
    generator_url: str | None = None


class AlertNotification(Model):
    """One notification of an alert group, as the intake (or a monitor) passes it on."""

    status: Literal["firing", "resolved"]
    group_key: str = Field(min_length=1, max_length=4096)
    group_labels: dict[str, str] = Field(default_factory=dict)
    common_labels: dict[str, str] = Field(default_factory=dict)
    common_annotations: dict[str, str] = Field(default_factory=dict)
    alerts: list[Alert] = Field(default_factory=list, max_length=ALERT_LIMIT)
    # Alerts of the group not in ``alerts``: truncated by Alertmanager or left out here.
    alerts_left_out: int = Field(default=0, ge=0)
    external_url: str | None = None
    source: str = "alertmanager"  # who sent it: alertmanager, monitor, rollout (onRollback)

    @property
    def labels(self) -> dict[str, str]:
        """The group's labels and the labels all its alerts share."""
        return {**self.group_labels, **self.common_labels}


class OpenIncidentInput(Model):
    """What a monitor asks the ``open_incident`` activity for (the intake's path)."""

    notification: AlertNotification
    runbook: Runbook


class IncidentPhase(StrEnum):
    TRIGGERED = "Triggered"
    ACKNOWLEDGED = "Acknowledged"
    RESOLVED = "Resolved"


class ApproveInput(Model):
    """Argument of ``approve``: ``approved=False`` rejects (the gated step is skipped)."""

    approved: bool = True
    by: str | None = Field(default=None, max_length=200)
    reason: str | None = Field(default=None, max_length=1000)


class IncidentStatus(Model):
    """Query ``status`` and the workflow's result."""

    incident: str
    title: str
    runbook: str
    service: str | None
    environment: str | None
    severity: str
    phase: IncidentPhase = IncidentPhase.TRIGGERED
    alert_status: Literal["firing", "resolved"] = "firing"
    notifications: int = 0
    step: int = 0
    step_count: int
    waiting_for: str | None = None
    dedup_key: str
    paged_levels: list[str] = Field(default_factory=list)
    triggered_levels: list[str] = Field(default_factory=list)  # PagerDuty accepted these
    level: str | None = None
    slack: SlackMessage | None = None
    restarts: int = 0
    opened_at: datetime
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    time_to_acknowledge_seconds: float | None = None
    time_to_resolve_seconds: float | None = None
    timeline: list[Event] = Field(default_factory=list)


class IncidentInput(Model):
    """``ui_url`` links to this run in the Temporal UI (the intake knows the UI's address;
    the workflow does not). Secrets are never here: the runbook names env variables."""

    runbook: Runbook
    notification: AlertNotification
    ui_url: str | None = None
    # Set when a long incident continued as new: its state so far. Steps and escalation
    # are over by then; the new run only waits for the resolution.
    carried: IncidentStatus | None = None
    notifications_per_run: int = Field(default=2000, ge=1)


_SLUG = re.compile(r"[^a-z0-9]+")


def incident_workflow_id(group_key: str, alertname: str | None = None) -> str:
    """``incident-<alertname>-<hash of the group key>``: stable per alert group."""
    digest = hashlib.sha256(group_key.encode()).hexdigest()[:16]
    slug = _SLUG.sub("-", (alertname or "alert").lower()).strip("-")[:40] or "alert"
    return f"incident-{slug}-{digest}"
