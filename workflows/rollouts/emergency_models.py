"""Input and result of EmergencyRollback."""

from __future__ import annotations

from pydantic import Field

from activities.model import Model
from activities.platforms.models import StableRecord
from workflows.core.timeline import Event
from workflows.rollouts.spec import Rollout


class RollbackRequest(Model):
    """What to roll back and to what.

    ``rollout`` is the service's spec as last rolled out. ``target`` is the version to go
    back to (``None``: only cancel the running rollout, whose own rollback restores what ran
    before it). Without a platform, deployflow cannot deploy: it can only flip the router
    between its two lists, so it needs to know what they run — ``live`` and ``idle`` are the
    versions history says the live and the idle list serve.
    """

    rollout: Rollout
    target: str | None = None
    cancel_workflow_id: str | None = None
    live: str | None = None
    idle: str | None = None
    # The revision the target version ran with (from its rollout's result); None: leave it.
    database_revision: str | None = None
    # On Kubernetes: the target's exact pod template, as a rollout recorded it while the
    # target was live (its result's ``stable``); None: history has none.
    restore: StableRecord | None = None
    reason: str = Field(default="emergency rollback", max_length=1000)
    by: str | None = None


class RollbackResult(Model):
    service: str
    environment: str
    version: str | None
    reason: str
    events: list[Event]
    flipped: bool = False  # the router was flipped between its lists (no platform)


class PlanRollbackInput(Model):
    """What an incident's ``rollback`` step asks for: the worker looks the rest up in
    history the way ``deployflow rollback`` does (``plan_rollback`` activity)."""

    service: str
    environment: str
    to: str | None = None
    reason: str = Field(default="incident rollback", max_length=1000)
    by: str | None = None


def rollback_workflow_id(service: str, environment: str) -> str:
    """One emergency rollback per service and environment: the CLI and incidents share it,
    so a second request attaches to (or waits for) the one running."""
    return f"rollback-{service}-{environment}"
