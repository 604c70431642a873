"""Input, status and result of ScopeRollback: every service of a group rolled back at once."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from activities.model import Model
from workflows.core.spec import Name
from workflows.core.timeline import Event
from workflows.rollouts.emergency_models import RollbackRequest


class ScopeRollbackRequest(Model):
    """Roll back ``services`` (the members of ``scope`` the starter found in visibility) in
    ``environment``. ``canaryOnly``: only stop the rollouts running now (their own rollback
    returns traffic to stable); promoted versions stay as they are."""

    scope: Name
    environment: Name
    services: list[Name] = Field(min_length=1, max_length=500)
    canary_only: bool = False
    reason: str = Field(default="emergency rollback", max_length=1000)
    by: str | None = Field(default=None, max_length=200)


class ServiceOutcome(StrEnum):
    PENDING = "Pending"
    ROLLING_BACK = "RollingBack"
    ROLLED_BACK = "RolledBack"
    SKIPPED = "Skipped"
    FAILED = "Failed"

    @property
    def finished(self) -> bool:
        return self in (ServiceOutcome.ROLLED_BACK, ServiceOutcome.SKIPPED, ServiceOutcome.FAILED)


class ServiceRollback(Model):
    """One service of the scope: ``before`` is the version its live list served, ``canary``
    the version of the rollout that was running (stopped), ``after`` what is live now."""

    service: str
    outcome: ServiceOutcome = ServiceOutcome.PENDING
    before: str | None = None
    canary: str | None = None
    after: str | None = None
    reason: str | None = None
    root_cause: str | None = None
    workflow_id: str | None = None


class ScopeRollbackStatus(Model):
    """Query ``status`` and the result: one entry per service, in the request's order."""

    scope: str
    environment: str
    canary_only: bool
    services: list[ServiceRollback]
    events: list[Event] = Field(default_factory=list)

    @property
    def failed(self) -> list[ServiceRollback]:
        return [s for s in self.services if s.outcome is ServiceOutcome.FAILED]


class PlanScopeMemberInput(Model):
    service: str
    environment: str
    canary_only: bool = False
    reason: str = Field(default="emergency rollback", max_length=1000)
    by: str | None = None


class ScopeMemberPlan(Model):
    """The member's EmergencyRollback request, or why there is nothing to do (``skipped``)."""

    request: RollbackRequest | None = None
    skipped: str | None = None


def scope_rollback_workflow_id(scope: str, environment: str, canary_only: bool) -> str:
    """One scope rollback per scope and environment (and one canary abort): a second
    request attaches to the one running."""
    kind = "canaries" if canary_only else "scope"
    return f"rollback-{kind}-{scope}-{environment}"
