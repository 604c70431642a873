"""The API's own request and response bodies (the workflows' models — ``RolloutStatus``,
``PipelineStatus``, ``IncidentStatus`` — are answered as they are)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from activities.health.activities import HealthReport, SmokeReport
from activities.model import Model
from activities.routing.base import Weights
from workflows.core.spec import Version
from workflows.promotion.models import PipelineStatus
from workflows.rollouts.models import RolloutResult, RolloutStatus


class ErrorBody(Model):
    error: str
    problems: list[str] | None = None


class Caller(Model):
    name: str
    scopes: list[str]


class Started(Model):
    workflow_id: str
    run_id: str | None = None
    url: str
    message: str | None = None


class Answer(Model):
    """What a verb's workflow answered."""

    workflow_id: str
    message: str


class RunRow(Model):
    workflow_id: str
    service: str | None
    environment: str | None
    phase: str | None
    status: str | None
    started: str


class Failure(Model):
    """A run that ended without a result: cancelled, terminated, timed out or failed."""

    outcome: str
    reason: str


class RolloutView(Model):
    workflow_id: str
    url: str
    running: bool
    status: RolloutStatus | None = None
    result: RolloutResult | None = None
    failure: Failure | None = None
    unreadable: str | None = None  # running, but the status query cannot be answered now


class Measured(Model):
    """A metric's latest measurement."""

    analysis: str
    metric: str
    phase: str
    value: list[float]
    at: datetime | None
    message: str | None = None


class NextStep(Model):
    """May the rollout go on now, what would make it, and why not."""

    may_proceed: bool
    action: Literal["promote", "resume"] | None = None
    reason: str


class RolloutHealth(Model):
    workflow_id: str
    running: bool
    phase: str
    version: str | None
    live_version: str | None  # what history says serves traffic (before this rollout ends)
    weights: Weights | None
    measurements: list[Measured]
    next: NextStep


class Gate(Model):
    gate: Literal["upstream", "window", "soak", "approval"]
    passed: bool
    reason: str
    until: datetime | None = None


class NextStage(Model):
    environment: str
    state: str
    may_start: bool
    gates: list[Gate]


class PipelineView(Model):
    workflow_id: str
    url: str
    status: PipelineStatus
    next: NextStage | None


class VerbBody(Model):
    reason: str | None = Field(default=None, max_length=1000)


class ApproveBody(Model):
    """``approver``, when given, must be the token's own name."""

    comment: str = Field(default="", max_length=2000)
    stage: str | None = Field(default=None, max_length=63)
    approver: str | None = Field(default=None, max_length=200)


class IncidentApproveBody(Model):
    approved: bool = True
    reason: str | None = Field(default=None, max_length=1000)


class RollbackBody(Model):
    to: Version | None = None
    reason: str | None = Field(default=None, max_length=1000)


class RollbackStarted(Model):
    workflow_id: str
    url: str
    target: str | None
    cancels: str | None


class CheckBody(Model):
    kind: Literal["health", "smoke"] = "health"
    pool: Literal["stable", "canary", "all"] = "all"


class SmokeOn(Model):
    target: str
    report: SmokeReport


class CheckResult(Model):
    """On-demand checks of the servers of a service's latest rollout spec."""

    workflow_id: str  # the rollout whose spec was checked
    kind: str
    passed: bool
    health: list[HealthReport] = Field(default_factory=list)
    smoke: list[SmokeOn] = Field(default_factory=list)
