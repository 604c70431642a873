"""What a rollout workflow shows and returns: status, result, pools, batches, the carry.

These are the JSON shapes users see in the Temporal UI (query ``status``, the result); what
they send (``OperatorInput``) is ``workflows/core/verbs.py``.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import Field

from activities.model import Model
from activities.platforms.models import StableRecord
from activities.routing.base import HeaderRoute, Weights
from workflows.analysis.run import AnalysisRun
from workflows.core.timeline import Event
from workflows.notifications.spec import NotifierState


class RolloutPhase(StrEnum):
    PROGRESSING = "Progressing"
    PAUSED = "Paused"
    ROLLING_BACK = "RollingBack"
    PROMOTED = "Promoted"
    ROLLED_BACK = "RolledBack"
    ABORTED = "Aborted"

    @property
    def finished(self) -> bool:
        return self in (RolloutPhase.PROMOTED, RolloutPhase.ROLLED_BACK, RolloutPhase.ABORTED)


PoolRole = Literal["active", "preview"]
BatchState = Literal["pending", "draining", "deploying", "checking", "done", "rolledBack"]


class PoolStatus(Model):
    """A blue-green pool: the router's ``stable`` or ``canary`` server list."""

    name: str
    role: PoolRole
    servers: list[str]
    version: str | None = None


class BatchStatus(Model):
    """A rolling-update batch and how far it got."""

    index: int
    hosts: list[str]
    state: BatchState = "pending"


class DatabaseStatus(Model):
    """Where the rollout found the database, where it took it, and where it is now."""

    before: str | None
    target: str | None = None
    now: str | None = None


class RolloutStatus(Model):
    service: str
    environment: str
    version: str
    strategy: str = "canary"
    phase: RolloutPhase = RolloutPhase.PROGRESSING
    message: str = ""
    current_step: int | None = None
    step_count: int = 0
    step: str | None = None
    weights: Weights | None = None  # as last set or read; None until then
    paused_reason: str | None = None
    analysis_runs: list[AnalysisRun] = Field(default_factory=list)
    pools: list[PoolStatus] = Field(default_factory=list)
    batches: list[BatchStatus] = Field(default_factory=list)
    database: DatabaseStatus | None = None
    events: list[Event] = Field(default_factory=list)


class RolloutResult(Model):
    outcome: RolloutPhase
    reason: str
    service: str
    environment: str
    version: str
    weights: Weights | None
    analysis_runs: list[AnalysisRun]
    events: list[Event]
    pools: list[PoolStatus] = Field(default_factory=list)
    batches: list[BatchStatus] = Field(default_factory=list)
    database: DatabaseStatus | None = None
    stable: StableRecord | None = Field(default=None, exclude_if=lambda v: v is None)
    """On Kubernetes: the stable Deployment as this run found it, before changing it — the
    exact pod template of the version live before the run (what an emergency rollback to
    that version puts back)."""


class CanaryCarry(Model):
    """What a long canary takes into its next run when it continues as new (a soak with
    background analysis grows history ~10 events per measurement, so a long one would
    otherwise reach the server's limits). Set by the workflow, never by a user."""

    status: RolloutStatus
    step: int  # the step to resume
    in_pause: bool = False  # inside that step's pause (else: held before the step)
    pause_until: datetime | None = None  # when that timed pause ends
    new_side: Literal["stable", "canary"] = "canary"
    runs: int = 1  # runs before the next one
    notifier: NotifierState | None = None
    stable: StableRecord | None = Field(default=None, exclude_if=lambda v: v is None)
    """On Kubernetes: the stable Deployment as the first run recorded it."""
    header_routes: list[HeaderRoute] | None = Field(default=None, exclude_if=lambda v: v is None)
    """The header routes held (setHeaderRoute steps); None if no such step ran yet."""
