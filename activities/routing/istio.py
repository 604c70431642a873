"""Istio router: weights of a ``VirtualService``'s http routes (``networking.istio.io/v1``).

    router:
      istio:
        virtualService: {name: checkout, routes: [primary]}   # routes omitted: the only one
        stableService: checkout-stable                         # host-based, or:
        canaryService: checkout-canary
        # destinationRule: {name: checkout, stableSubsetName: stable, canarySubsetName: canary}

Each named route must have exactly two destinations, the stable and the canary one (by
host, ``checkout-stable`` or ``checkout-stable.shop.svc.cluster.local``, or by subset);
their weights are set, nothing else. Header routes are http routes of their own at the top
of ``spec.http`` (Istio takes the first route that matches), each a copy of the first
managed route sending everything to its canary destination, and recorded in the
``deployflow.dev/header-routes`` annotation. A change is one JSON patch replacing
``spec.http`` whole (a merge patch would replace the list too, and a strategic merge patch
is not served for custom resources), guarded by the resourceVersion read.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Final

import structlog

from activities.errors import INVALID_SPEC, failure
from activities.kubeconfig import KubeClients
from activities.routing.base import HeaderMatch, HeaderRoute, HeaderValue, Weights
from activities.routing.kube import Api, Obj, list_patch, namespaced, optimistically, owned_routes
from activities.routing.kube_spec import IstioRouterSpec

log = structlog.get_logger()

API_VERSION: Final = "networking.istio.io/v1"


def side_of(spec: IstioRouterSpec, destination: Obj) -> str | None:
    """``stable``, ``canary`` or None: which side a route destination is."""
    rule = spec.destination_rule
    if rule is not None:
        subsets = {rule.stable_subset_name: "stable", rule.canary_subset_name: "canary"}
        return subsets.get(destination.get("subset", ""))
    host = str(destination.get("host", ""))
    for side, name in (("stable", spec.stable_service), ("canary", spec.canary_service)):
        if host == name or host.startswith(f"{name}."):
            return side
    return None


def managed(spec: IstioRouterSpec, http: list[Obj], where: str) -> list[int]:
    """Indexes in ``http`` (header routes already left out) of the routes whose weights move."""
    names = spec.only.routes
    if not names:
        if len(http) != 1:
            raise failure(
                INVALID_SPEC,
                f"{where} has {len(http)} http routes: name the ones to shift in "
                "virtualService.routes",
            )
        return [0]
    present = [r.get("name") for r in http]
    absent = [n for n in names if n not in present]
    if absent:
        raise failure(INVALID_SPEC, f"{where} has no http route named {absent} (it has: {present})")
    return [present.index(n) for n in names]


def sides(spec: IstioRouterSpec, route: Obj, where: str) -> list[str]:
    """The side of each of ``route``'s destinations; ``InvalidSpec`` unless they are
    exactly the stable and the canary one."""
    destinations = route.get("route") or []
    found = [side_of(spec, d.get("destination") or {}) or "other" for d in destinations]
    if sorted(found) != ["canary", "stable"]:
        raise failure(
            INVALID_SPEC,
            f"{where} route {route.get('name', '(unnamed)')}: needs exactly the stable and the "
            f"canary destination, has {[d.get('destination') for d in destinations]}",
        )
    return found


def weighted(spec: IstioRouterSpec, route: Obj, weights: Weights, where: str) -> Obj:
    """``route`` with its stable and canary destinations at ``weights``."""
    sides_ = sides(spec, route, where)
    shifted = copy.deepcopy(route)
    for destination, side in zip(shifted["route"], sides_, strict=True):
        destination["weight"] = weights.stable if side == "stable" else weights.canary
    return shifted


def header_route(spec: IstioRouterSpec, route: HeaderRoute, base: Obj, where: str) -> Obj:
    """An http route sending requests matching ``route`` (within ``base``'s own matches)
    to ``base``'s canary destination; otherwise a copy of ``base`` (rewrites, timeouts)."""
    headers = {
        m.header_name.lower(): {m.header_value.kind: m.header_value.value} for m in route.match
    }
    matches = [
        copy.deepcopy(m) | {"headers": {**(m.get("headers") or {}), **headers}}
        for m in base.get("match") or [{}]
    ]
    canary = base["route"][sides(spec, base, where).index("canary")]
    built = copy.deepcopy(base) | {"name": route.name, "match": matches}
    built["route"] = [{"destination": copy.deepcopy(canary["destination"]), "weight": 100}]
    return built


def desired_http(
    spec: IstioRouterSpec,
    vs: Obj,
    weights: Weights | None,
    routes: Sequence[HeaderRoute] | None,
) -> tuple[list[Obj], list[str]]:
    """``spec.http`` with the managed routes at ``weights`` and exactly the header ``routes``
    first (None for either: as they are), and the header route names to record."""
    where = f"VirtualService {spec.namespace}/{vs['metadata']['name']}"
    http: list[Obj] = (vs.get("spec") or {}).get("http") or []
    owned = owned_routes(vs)
    ours = [r for r in http if r.get("name") in owned]
    rest = [r for r in http if r.get("name") not in owned]
    indexes = managed(spec, rest, where)
    if weights is not None:
        for i in indexes:
            rest[i] = weighted(spec, rest[i], weights, where)
    if routes is None:
        return ours + rest, [r["name"] for r in ours]
    taken = {str(r.get("name")) for r in rest} & {r.name for r in routes}
    if taken:
        raise failure(INVALID_SPEC, f"{where} already has http routes named {sorted(taken)}")
    built = [header_route(spec, r, rest[indexes[0]], where) for r in routes]
    return built + rest, [r.name for r in routes]


def read_weights(spec: IstioRouterSpec, vs: Obj) -> Weights:
    """The split of the first managed route."""
    where = f"VirtualService {spec.namespace}/{vs['metadata']['name']}"
    http = [
        r for r in (vs.get("spec") or {}).get("http") or [] if r.get("name") not in owned_routes(vs)
    ]
    route = http[managed(spec, http, where)[0]]
    by_side = {
        side: int(d.get("weight", 0))
        for side, d in zip(sides(spec, route, where), route["route"], strict=True)
    }
    if by_side["stable"] + by_side["canary"] != 100:
        # Istio's own rule: weights of a route's destinations add up to 100 (one alone: 100).
        raise failure(INVALID_SPEC, f"{where}: weights {by_side} do not add up to 100")
    return Weights(stable=by_side["stable"], canary=by_side["canary"])


def read_header_routes(vs: Obj) -> list[HeaderRoute]:
    """The header routes deployflow put on the VirtualService, read back (header names as
    Istio holds them: lower case)."""
    owned = owned_routes(vs)
    found = []
    for route in (vs.get("spec") or {}).get("http") or []:
        if route.get("name") in owned:
            headers = ((route.get("match") or [{}])[0]).get("headers") or {}
            match = [
                HeaderMatch(header_name=name, header_value=HeaderValue.model_validate(value))
                for name, value in headers.items()
            ]
            found.append(HeaderRoute(name=route["name"], match=match))
    return found


class IstioRouter:
    """Weights and header routes in each of the spec's VirtualServices, one after another
    (Argo's ``virtualServices``); read back from the first."""

    def __init__(self, spec: IstioRouterSpec, clusters: KubeClients) -> None:
        self.parts = [VirtualServiceRouter(one, clusters) for one in spec.each()]

    def set_weights(self, weights: Weights) -> None:
        for part in self.parts:
            part.set_weights(weights)

    def get_weights(self) -> Weights:
        return self.parts[0].get_weights()

    def set_header_routes(self, routes: Sequence[HeaderRoute]) -> None:
        for part in self.parts:
            part.set_header_routes(routes)

    def get_header_routes(self) -> list[HeaderRoute]:
        return self.parts[0].get_header_routes()


class VirtualServiceRouter:
    """Weights and header routes in one VirtualService."""

    def __init__(self, spec: IstioRouterSpec, clusters: KubeClients) -> None:
        self.spec = spec
        self.api = Api(clusters.api(spec.context))
        self.what = f"VirtualService {spec.namespace}/{spec.only.name}"

    def set_weights(self, weights: Weights) -> None:
        self._check_subsets()
        changed = self._apply(weights, None)
        log.info(
            "istio_weights_set" if changed else "istio_weights_unchanged",
            virtual_service=self.what,
            **weights.model_dump(),
        )

    def get_weights(self) -> Weights:
        return read_weights(self.spec, self._read())

    def set_header_routes(self, routes: Sequence[HeaderRoute]) -> None:
        changed = self._apply(None, routes)
        log.info(
            "istio_header_routes_set" if changed else "istio_header_routes_unchanged",
            virtual_service=self.what,
            routes=[r.name for r in routes],
        )

    def get_header_routes(self) -> list[HeaderRoute]:
        return read_header_routes(self._read())

    def _apply(self, weights: Weights | None, routes: Sequence[HeaderRoute] | None) -> bool:
        path = self._path("virtualservices", self.spec.only.name)

        def attempt() -> bool:
            vs = self.api.get(path, self.what)
            http, names = desired_http(self.spec, vs, weights, routes)
            patch = list_patch(vs, "/spec/http", http, names)
            if patch is None:
                return False
            self.api.patch(path, patch, self.what)
            return True

        return optimistically(f"change {self.what}", attempt)

    def _read(self) -> Obj:
        return self.api.get(self._path("virtualservices", self.spec.only.name), self.what)

    def _check_subsets(self) -> None:
        """Subset-based: the DestinationRule must define both subsets (it is only read)."""
        rule = self.spec.destination_rule
        if rule is None:
            return
        what = f"DestinationRule {self.spec.namespace}/{rule.name}"
        found = self.api.get(self._path("destinationrules", rule.name), what)
        subsets = {s.get("name") for s in (found.get("spec") or {}).get("subsets") or []}
        wanted = {rule.stable_subset_name, rule.canary_subset_name}
        if not wanted <= subsets:
            raise failure(
                INVALID_SPEC, f"{what} defines subsets {sorted(subsets)}, not {sorted(wanted)}"
            )

    def _path(self, plural: str, name: str) -> str:
        return namespaced(API_VERSION, self.spec.namespace, plural, name)
