"""The inputs of the platform activities: what a workflow sends to act on one target."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from activities.model import Model
from activities.platforms.base import Action
from activities.platforms.spec import KubernetesPlatformSpec, PlatformSpec


class PlatformActionInput(Model):
    """``version`` is required by ``deploy`` and ignored by the other actions; ``key`` is the
    workflow's business key (``{workflow_id}/batch-2/10.0.0.5:8080``), used in logs."""

    platform: PlatformSpec
    action: Action
    target: str
    version: str | None = None
    service: str
    key: str


class CurrentVersionInput(Model):
    platform: PlatformSpec
    target: str
    service: str
    key: str


Workload = Literal["stable", "canary"]
"""The team's Deployment, or the canary Deployment deployflow owns beside it."""


class StableRecord(Model):
    """The stable Deployment as a run found it, before changing anything: what a rollback
    puts back exactly (better than ``kubectl rollout undo``: no guessing a ReplicaSet)."""

    deployment: str  # context/namespace/deployment/name, for people
    uid: str
    template: dict[str, Any]  # spec.template as the API server returned it
    replicas: int
    strategy: dict[str, Any]
    progress_deadline_seconds: int
    container: str  # the container deployflow sets the image of
    image: str  # its image now
    # The template's deployflow.io/version annotation, else the image's tag (None: neither).
    version: str | None


class RecordStableInput(Model):
    platform: KubernetesPlatformSpec
    key: str


class ApplyCanaryInput(Model):
    """Create or update the canary Deployment from ``stable``'s template running
    ``version``, with ``replicas``, then wait for it to roll out (unless ``replicas`` is 0)."""

    platform: KubernetesPlatformSpec
    stable: StableRecord
    version: str
    replicas: int = Field(ge=0)
    rollout: str  # the workflow id, written on what deployflow changes
    key: str


class SetStableInput(Model):
    """Set the stable Deployment's pod template (and strategy, progress deadline) exactly as
    given, then wait for it to roll out: a promotion, a rolling update, a rollback."""

    platform: KubernetesPlatformSpec
    template: dict[str, Any]
    strategy: dict[str, Any] | None = None
    progress_deadline_seconds: int | None = None
    rollout: str
    key: str
    # The uid of the Deployment ``template`` was recorded from: a Deployment by that name
    # with another uid (deleted and created again since) is refused, never overwritten.
    uid: str | None = None


class ScaleInput(Model):
    platform: KubernetesPlatformSpec
    workload: Workload
    replicas: int = Field(ge=0)
    key: str


class PauseInput(Model):
    """``kubectl rollout pause`` (``paused``) or ``kubectl rollout resume`` of one workload."""

    platform: KubernetesPlatformSpec
    workload: Workload
    paused: bool
    key: str


class RestartInput(Model):
    """``kubectl rollout restart`` at ``at`` (the workflow's clock: a retry is a no-op)."""

    platform: KubernetesPlatformSpec
    workload: Workload
    at: str
    key: str


class WorkloadState(Model):
    """A Deployment after an activity changed it (``changed`` False: it already matched)."""

    deployment: str
    changed: bool
    replicas: int
    updated_replicas: int
    available_replicas: int
    message: str
    duration_ms: float
