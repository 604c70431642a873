"""ingress-nginx router: a canary Ingress deployflow owns beside the team's stable one.

    router:
      ingressNginx: {stableIngress: checkout, stableService: checkout,
                     canaryService: checkout-canary}

The canary Ingress (``<stableIngress>-canary``) copies the stable one's ``ingressClassName``
and rules, with every backend on ``stableService`` sent to ``canaryService`` instead, and
carries ingress-nginx's canary annotations: ``canary: "true"``, ``canary-weight`` and, for
a header route, ``canary-by-header`` with ``canary-by-header-value`` (exact) or
``canary-by-header-pattern`` (regex). The stable Ingress is only read. Each change is one
merge patch of the canary Ingress (or its create), so it applies whole or not at all.
The canary Ingress stays at weight 0 after a rollout: it routes nothing, and the next
rollout's first change is a patch, not a create.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import structlog

from activities.errors import (
    INVALID_SPEC,
    KUBERNETES_OBJECT_FOREIGN,
    failure,
)
from activities.kubeconfig import KubeClients
from activities.routing.base import HeaderMatch, HeaderRoute, HeaderValue, Weights
from activities.routing.kube import (
    MANAGED_BY,
    MERGE_PATCH,
    Api,
    Conflict,
    NotFound,
    Obj,
    Patch,
    merge_patch,
    namespaced,
    optimistically,
)
from activities.routing.kube_spec import IngressNginxRouterSpec

log = structlog.get_logger()

ROUTE_NAME = "deployflow.dev/header-route"
"""Annotation on the canary Ingress: the name of the header route its canary-by-header holds."""


def canary_annotations(
    spec: IngressNginxRouterSpec, weights: Weights, route: HeaderRoute | None
) -> dict[str, str]:
    """ingress-nginx's annotations for ``weights`` and at most one header ``route``."""
    prefix = spec.annotation_prefix
    annotations = {f"{prefix}/canary": "true", f"{prefix}/canary-weight": str(weights.canary)}
    if route is not None:
        match = route.match[0]
        value = match.header_value
        kind = "canary-by-header-value" if value.exact is not None else "canary-by-header-pattern"
        annotations |= {
            f"{prefix}/canary-by-header": match.header_name,
            f"{prefix}/{kind}": value.value,
            ROUTE_NAME: route.name,
        }
    return annotations


def managed_annotation_keys(spec: IngressNginxRouterSpec) -> set[str]:
    prefix = spec.annotation_prefix
    names = ("canary", "canary-weight", "canary-by-header", "canary-by-header-value")
    return {f"{prefix}/{n}" for n in (*names, "canary-by-header-pattern")} | {ROUTE_NAME}


def canary_spec(spec: IngressNginxRouterSpec, stable: Obj) -> Obj:
    """The stable Ingress's class and rules with ``stableService`` backends sent to
    ``canaryService``; ``InvalidSpec`` if no backend is ``stableService``."""
    source = stable.get("spec") or {}
    copied: Obj = {}
    if "ingressClassName" in source:
        copied["ingressClassName"] = source["ingressClassName"]
    found = False

    def repoint(backend: Obj) -> Obj:
        nonlocal found
        backend = copy.deepcopy(backend)
        service = backend.get("service")
        if service is not None and service.get("name") == spec.stable_service:
            service["name"] = spec.canary_service
            found = True
        return backend

    if "defaultBackend" in source:
        copied["defaultBackend"] = repoint(source["defaultBackend"])
    rules = []
    for rule in source.get("rules") or []:
        rule = copy.deepcopy(rule)
        for path in (rule.get("http") or {}).get("paths") or []:
            path["backend"] = repoint(path.get("backend") or {})
        rules.append(rule)
    if rules:
        copied["rules"] = rules
    if not found:
        raise failure(
            INVALID_SPEC,
            f"Ingress {spec.namespace}/{spec.stable_ingress} has no backend on stableService "
            f"{spec.stable_service}: the canary Ingress would route nothing to the canary",
        )
    return copied


def canary_ingress(
    spec: IngressNginxRouterSpec, stable: Obj, weights: Weights, route: HeaderRoute | None
) -> Obj:
    """The whole canary Ingress, as created."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": spec.canary_ingress_name,
            "namespace": spec.namespace,
            "labels": dict(MANAGED_BY),
            "annotations": canary_annotations(spec, weights, route),
        },
        "spec": canary_spec(spec, stable),
    }


def canary_patch(spec: IngressNginxRouterSpec, current: Obj, wanted: Obj) -> Patch | None:
    """The merge patch bringing the canary Ingress ``current`` to ``wanted``: deployflow's
    annotations (others kept) and the whole spec, guarded by its resourceVersion; None if
    nothing differs."""
    managed = managed_annotation_keys(spec)
    annotations = current["metadata"].get("annotations") or {}
    ours = {k: v for k, v in annotations.items() if k in managed}
    metadata: Obj = {}
    if change := merge_patch(ours, wanted["metadata"]["annotations"]):
        metadata["annotations"] = change
    body: Obj = {}
    if spec_change := merge_patch(current.get("spec") or {}, wanted["spec"]):
        body["spec"] = spec_change
    if not (metadata or body):
        return None
    metadata["resourceVersion"] = current["metadata"]["resourceVersion"]
    return Patch({"metadata": metadata, **body}, MERGE_PATCH)


def read_weights(spec: IngressNginxRouterSpec, canary: Obj | None) -> Weights:
    """The split a canary Ingress holds (none: all stable)."""
    if canary is None:
        return Weights(stable=100, canary=0)
    raw = (canary["metadata"].get("annotations") or {}).get(
        f"{spec.annotation_prefix}/canary-weight", "0"
    )
    if not raw.isdigit() or int(raw) > 100:
        raise failure(
            KUBERNETES_OBJECT_FOREIGN,
            f"Ingress {spec.namespace}/{spec.canary_ingress_name}: canary-weight {raw!r} is "
            "not 0..100 (deployflow writes the weight in percent, total 100)",
        )
    return Weights.canary_at(int(raw))


def read_route(spec: IngressNginxRouterSpec, canary: Obj | None) -> HeaderRoute | None:
    """The header route the canary Ingress holds, if any."""
    annotations: dict[str, Any] = (canary or {}).get("metadata", {}).get("annotations") or {}
    prefix = spec.annotation_prefix
    header = annotations.get(f"{prefix}/canary-by-header")
    name = annotations.get(ROUTE_NAME)
    if header is None or name is None:
        return None
    exact = annotations.get(f"{prefix}/canary-by-header-value")
    value = (
        HeaderValue(exact=exact)
        if exact is not None
        else HeaderValue(regex=annotations.get(f"{prefix}/canary-by-header-pattern", ".*"))
    )
    return HeaderRoute(name=name, match=[HeaderMatch(header_name=header, header_value=value)])


class IngressNginxRouter:
    """Weights and one header route on the canary Ingress."""

    def __init__(self, spec: IngressNginxRouterSpec, clusters: KubeClients) -> None:
        self.spec = spec
        self.api = Api(clusters.api(spec.context))
        self.what = f"Ingress {spec.namespace}/{spec.canary_ingress_name}"

    def set_weights(self, weights: Weights) -> None:
        changed = self._apply(lambda canary: (weights, read_route(self.spec, canary)))
        log.info(
            "ingress_nginx_weights_set" if changed else "ingress_nginx_weights_unchanged",
            ingress=self.what,
            **weights.model_dump(),
        )

    def get_weights(self) -> Weights:
        return read_weights(self.spec, self._read_canary())

    def set_header_routes(self, routes: Sequence[HeaderRoute]) -> None:
        problem = self.spec.header_routes_problem(routes)
        if problem is not None:
            raise failure(INVALID_SPEC, problem)
        route = routes[0] if routes else None
        changed = self._apply(lambda canary: (read_weights(self.spec, canary), route))
        log.info(
            "ingress_nginx_header_route_set" if changed else "ingress_nginx_header_route_unchanged",
            ingress=self.what,
            route=route.name if route else None,
        )

    def get_header_routes(self) -> list[HeaderRoute]:
        route = read_route(self.spec, self._read_canary())
        return [] if route is None else [route]

    def _apply(self, state: Callable[[Obj | None], tuple[Weights, HeaderRoute | None]]) -> bool:
        """Bring the canary Ingress to ``state(current)``: its weights and header route."""
        stable_what = f"Ingress {self.spec.namespace}/{self.spec.stable_ingress}"
        name = self.spec.canary_ingress_name

        def attempt() -> bool:
            stable = self.api.get(self._path(self.spec.stable_ingress), stable_what)
            current = self._read_canary()
            weights, route = state(current)
            wanted = canary_ingress(self.spec, stable, weights, route)
            if current is None:  # a 409 (created meanwhile) reads again
                self.api.create(self._path(), wanted, self.what)
                return True
            patch = canary_patch(self.spec, current, wanted)
            if patch is None:
                return False
            path, body, content_type = self._path(name), patch.body, patch.content_type
            try:
                self.api.request("PATCH", path, f"patch {self.what}", body, content_type)
            except NotFound:  # deleted since it was read: read again and create it
                raise Conflict(f"{self.what} was deleted since it was read") from None
            return True

        return optimistically(f"change {self.what}", attempt)

    def _read_canary(self) -> Obj | None:
        canary = self.api.find(self._path(self.spec.canary_ingress_name), self.what)
        if canary is None:
            return None
        labels = canary["metadata"].get("labels") or {}
        if not MANAGED_BY.items() <= labels.items():
            raise failure(
                KUBERNETES_OBJECT_FOREIGN,
                f"{self.what} exists and is not deployflow's (no label "
                "app.kubernetes.io/managed-by=deployflow): name another canaryIngress "
                "or delete it",
            )
        return canary

    def _path(self, name: str = "") -> str:
        return namespaced("networking.k8s.io/v1", self.spec.namespace, "ingresses", name)
