"""Input and result of EmergencyRollback."""

from __future__ import annotations

from pydantic import Field

from activities.model import Model
from workflows.rollout_models import Event
from workflows.spec import Rollout


class RollbackRequest(Model):
    """``rollout`` is the service's spec with ``version`` set to the target version."""

    rollout: Rollout
    cancel_workflow_id: str | None = None
    # The revision the target version ran with (from its rollout's result); None: leave it.
    database_revision: str | None = None
    reason: str = Field(default="emergency rollback", max_length=1000)
    by: str | None = None


class RollbackResult(Model):
    service: str
    environment: str
    version: str
    reason: str
    events: list[Event]
