"""Service selector router: blue-green by switching what a Kubernetes Service selects.

    router:
      service: {activeService: checkout, previewService: checkout-preview,
                stableSelector: {app: checkout}, canarySelector: {app: checkout-canary}}

The selector keys either side names are deployflow's; other keys of a Service's selector
(``tier: web``) are the team's and stay. ``activeService`` selects the side at 100 %;
``previewService`` always selects the canary side. A switch is one merge patch of one
Service's selector, so it applies whole or not at all; only 100/0 and 0/100 exist.
"""

from __future__ import annotations

from typing import Any

import structlog

from activities.errors import INVALID_SPEC, KUBERNETES_OBJECT_FOREIGN, failure
from activities.kubeconfig import KubeClients
from activities.routing.base import Weights
from activities.routing.kube import (
    MERGE_PATCH,
    Api,
    Obj,
    Patch,
    merge_patch,
    namespaced,
    optimistically,
)
from activities.routing.kube_spec import ServiceRouterSpec

log = structlog.get_logger()


def side_selector(spec: ServiceRouterSpec, weights: Weights) -> dict[str, str]:
    """The selector of the side ``weights`` sends everything to; refuses a split."""
    if weights.canary not in (0, 100):
        raise failure(
            INVALID_SPEC,
            "a Service selector switch moves all traffic at once: "
            f"stable/canary must be 100/0 or 0/100, got {weights.stable}/{weights.canary}",
        )
    return dict(spec.canary_selector if weights.canary == 100 else spec.stable_selector)


def selector_patch(spec: ServiceRouterSpec, service: Obj, wanted: dict[str, str]) -> Patch | None:
    """The merge patch giving ``service`` the ``wanted`` side's selector keys (removing the
    other side's), keeping the team's keys, guarded by its resourceVersion; None if it
    already selects that side."""
    current: dict[str, Any] = service.get("spec", {}).get("selector") or {}
    managed = set(spec.stable_selector) | set(spec.canary_selector)
    keep = {k: v for k, v in current.items() if k not in managed}
    change = merge_patch(current, keep | wanted)
    if not change:
        return None
    metadata = {"resourceVersion": service["metadata"]["resourceVersion"]}
    return Patch({"metadata": metadata, "spec": {"selector": change}}, MERGE_PATCH)


def selected_weights(spec: ServiceRouterSpec, service: Obj) -> Weights:
    """The split a Service's selector stands for; ``KubernetesObjectForeign`` if it
    selects neither side."""
    current = service.get("spec", {}).get("selector") or {}
    managed = set(spec.stable_selector) | set(spec.canary_selector)
    ours = {k: v for k, v in current.items() if k in managed}
    if ours == spec.stable_selector:
        return Weights(stable=100, canary=0)
    if ours == spec.canary_selector:
        return Weights(stable=0, canary=100)
    name = service["metadata"]["name"]
    raise failure(
        KUBERNETES_OBJECT_FOREIGN,
        f"Service {spec.namespace}/{name} selects {ours}: neither stableSelector "
        f"{spec.stable_selector} nor canarySelector {spec.canary_selector}",
    )


class ServiceRouter:
    """Switches ``activeService``'s selector; keeps ``previewService`` on the canary side."""

    def __init__(self, spec: ServiceRouterSpec, clusters: KubeClients) -> None:
        self.spec = spec
        self.api = Api(clusters.api(spec.context))

    def set_weights(self, weights: Weights) -> None:
        wanted = side_selector(self.spec, weights)
        if self.spec.preview_service is not None:
            self._select(self.spec.preview_service, dict(self.spec.canary_selector))
        changed = self._select(self.spec.active_service, wanted)
        log.info(
            "service_selector_set" if changed else "service_selector_unchanged",
            service=f"{self.spec.namespace}/{self.spec.active_service}",
            selector=wanted,
        )

    def get_weights(self) -> Weights:
        name = self.spec.active_service
        return selected_weights(self.spec, self.api.get(self._path(name), self._what(name)))

    def _select(self, name: str, wanted: dict[str, str]) -> bool:
        path, what = self._path(name), self._what(name)

        def attempt() -> bool:
            patch = selector_patch(self.spec, self.api.get(path, what), wanted)
            if patch is None:
                return False
            self.api.patch(path, patch, what)
            return True

        return optimistically(f"switch {what}", attempt)

    def _path(self, name: str) -> str:
        return namespaced("v1", self.spec.namespace, "services", name)

    def _what(self, name: str) -> str:
        return f"Service {self.spec.namespace}/{name}"
