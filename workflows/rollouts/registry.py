"""Which workflow runs which strategy; the worker registers them all."""

from __future__ import annotations

from workflows.rollouts.blue_green import BlueGreenRollout
from workflows.rollouts.canary import CanaryRollout
from workflows.rollouts.recreate import RecreateRollout
from workflows.rollouts.rolling import RollingRollout
from workflows.rollouts.spec import Rollout

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
