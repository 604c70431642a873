"""What a PromotionPipeline accepts and shows: submissions, approvals, status, result."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import Field

from activities.model import Model
from workflows.core.timeline import Event
from workflows.promotion.spec import Pipeline


class PipelineOutcome(StrEnum):
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    REJECTED = "Rejected"
    SUPERSEDED = "Superseded"


class PipelineRequest(Model):
    """The workflow's input: the pipeline, the version to move, versions queued behind it."""

    pipeline: Pipeline
    version: str
    queued: list[str] = Field(default_factory=list)


class Submission(Model):
    """Update (and signal) ``submit``: a (newer) version for this pipeline."""

    version: str = Field(min_length=1, max_length=128, pattern=r"^[\w.+-]+$")
    by: str | None = None


class ApprovalInput(Model):
    """Argument of ``approve`` / ``reject``. ``stage`` defaults to the open gate."""

    approver: str = Field(min_length=1, max_length=200)
    comment: str = Field(default="", max_length=2000)
    stage: str | None = None


Decision = Literal["approved", "rejected"]
StageState = Literal[
    "pending",
    "waiting-window",
    "soaking",
    "awaiting-approval",
    "rolling-out",
    "verifying",
    "succeeded",
    "failed",
    "rejected",
    "cancelled",
]


class ApprovalRecord(Model):
    approver: str
    decision: Decision
    comment: str
    at: datetime


class StageStatus(Model):
    environment: str
    state: StageState = "pending"
    rollout_workflow_id: str | None = None
    waiting_until: datetime | None = None
    approvers: list[str] = Field(default_factory=list)
    approvals: list[ApprovalRecord] = Field(default_factory=list)
    outcome: str | None = None
    reason: str | None = None
    live_since: datetime | None = None


class PipelineStatus(Model):
    name: str
    service: str
    version: str
    policy: str
    outcome: PipelineOutcome = PipelineOutcome.RUNNING
    message: str = ""
    stages: list[StageStatus] = Field(default_factory=list)
    queued: list[str] = Field(default_factory=list)
    superseded_by: str | None = None  # supersede policy: the version that runs next
    events: list[Event] = Field(default_factory=list)


class PipelineResult(Model):
    outcome: PipelineOutcome
    reason: str
    version: str
    stages: list[StageStatus]
    events: list[Event]
