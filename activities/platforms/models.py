"""The inputs of the platform activities: what a workflow sends to act on one target."""

from __future__ import annotations

from activities.model import Model
from activities.platforms.base import Action
from activities.platforms.spec import PlatformSpec


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
