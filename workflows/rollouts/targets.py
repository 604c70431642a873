"""Where each version runs: the targets seam, beside the traffic seam (activities/routing).

A strategy asks here which targets run the stable and the canary version, and hands them
to the platform (activities/platforms) to deploy, start, stop and health-check; it never
reads the router's spec for that. On VMs a target is a ``host:port`` and the inventory is
the router's two server lists: the servers a list names run the version that list's
traffic reaches. Kubernetes workloads, found from their own spec rather than from server
lists, are the next kind of target.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from activities.routing.base import Weights
from activities.routing.spec import RouterSpec

Side = Literal["stable", "canary"]


@dataclass(frozen=True)
class Targets:
    """The targets of each side, in spec order."""

    stable: tuple[str, ...]
    canary: tuple[str, ...]

    def side(self, side: Side) -> list[str]:
        return list(self.stable if side == "stable" else self.canary)

    def everywhere(self) -> list[str]:
        """Every target, stable side first."""
        return [*self.stable, *self.canary]

    def serving(self, weights: Weights) -> list[str]:
        """The targets traffic reaches at ``weights``: each side with a share above 0 %."""
        return [*(self.stable if weights.stable else ()), *(self.canary if weights.canary else ())]


def targets_for(router: RouterSpec) -> Targets:
    """VMs: the hosts of the router's server lists (every router kind today has them)."""
    pools = router.pools()
    assert pools is not None, f"router {router.kind} lists no servers to deploy to"
    return Targets(stable=tuple(pools.stable), canary=tuple(pools.canary))
