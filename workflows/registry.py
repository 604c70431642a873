"""Which workflow runs which strategy; the worker registers them all."""

from __future__ import annotations

from workflows.blue_green import BlueGreenRollout
from workflows.canary import CanaryRollout
from workflows.recreate import RecreateRollout
from workflows.rolling import RollingRollout
from workflows.spec import Rollout

BY_STRATEGY: dict[str, type] = {
    "canary": CanaryRollout,
    "blueGreen": BlueGreenRollout,
    "rolling": RollingRollout,
    "recreate": RecreateRollout,
}
WORKFLOW_TYPES = tuple(cls.__name__ for cls in BY_STRATEGY.values())


def workflow_type(rollout: Rollout) -> str:
    """The registered workflow type name for ``rollout``'s strategy."""
    return BY_STRATEGY[rollout.spec.strategy.name].__name__
