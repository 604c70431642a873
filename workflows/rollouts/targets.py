"""Where each version runs: the targets seam, beside the traffic seam (activities/routing).

A strategy asks here which targets run the stable and the canary version, and hands them
to the platform (activities/platforms) to deploy, start, stop and health-check; it never
reads the router's spec for that. On VMs a target is a ``host:port`` and the inventory is
the router's two server lists: the servers a list names run the version that list's
traffic reaches. On Kubernetes the targets are workloads found from the platform's own
spec: the team's Deployment runs the stable version and the canary Deployment deployflow
owns beside it runs the new one (``workloads``; docs/kubernetes.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from activities.platforms.spec import DeploymentTarget, PlatformSpec
from activities.routing.base import Weights
from activities.routing.spec import RouterSpec

Side = Literal["stable", "canary"]


@dataclass(frozen=True)
class Targets:
    """The targets of each side, in spec order; ``workloads`` is set when they are
    Kubernetes Deployments (then each side is one ``context/namespace/deployment/name``)."""

    stable: tuple[str, ...]
    canary: tuple[str, ...]
    workloads: DeploymentTarget | None = None

    def side(self, side: Side) -> list[str]:
        return list(self.stable if side == "stable" else self.canary)

    def everywhere(self) -> list[str]:
        """Every target, stable side first."""
        return [*self.stable, *self.canary]

    def serving(self, weights: Weights) -> list[str]:
        """The targets traffic reaches at ``weights``: each side with a share above 0 %."""
        return [*(self.stable if weights.stable else ()), *(self.canary if weights.canary else ())]


def targets_for(router: RouterSpec, platform: PlatformSpec | None = None) -> Targets:
    """Kubernetes: the platform's Deployment and its canary. VMs: the hosts of the router's
    server lists. None of those (a Kubernetes router without the kubernetes platform: a
    canary that only moves traffic): no targets."""
    if platform is not None and platform.kubernetes is not None:
        deployment = platform.kubernetes.deployment
        return Targets(
            stable=(deployment.describe(),),
            canary=(deployment.describe(deployment.canary_name),),
            workloads=deployment,
        )
    pools = router.pools()
    if pools is None:
        return Targets(stable=(), canary=())
    return Targets(stable=tuple(pools.stable), canary=tuple(pools.canary))
