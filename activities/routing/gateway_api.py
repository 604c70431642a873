"""Gateway API router: ``backendRefs`` weights of an ``HTTPRoute`` (gateway.networking.k8s.io/v1).

    router:
      gatewayAPI: {httpRoute: checkout, stableService: checkout-stable,
                   canaryService: checkout-canary}

Every rule with both Services among its ``backendRefs`` is managed (and must have no other
backend): their weights become the split, in percent. Header routes are rules of their own
(named, GEP-995), each a copy of the first managed rule whose matches also require the
headers and whose only backend is the canary; Gateway API picks the most specific rule, and
header matches make these the more specific ones. Recorded in the
``deployflow.dev/header-routes`` annotation. A change is one JSON patch replacing
``spec.rules`` whole, guarded by the resourceVersion read.
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
from activities.routing.kube_spec import GatewayAPIRouterSpec

log = structlog.get_logger()

API_VERSION: Final = "gateway.networking.k8s.io/v1"
_MATCH_TYPES: Final = {"exact": "Exact", "regex": "RegularExpression"}


def side_of(spec: GatewayAPIRouterSpec, ref: Obj) -> str | None:
    """``stable``, ``canary`` or None: which Service a backendRef is (core group, this
    namespace)."""
    if ref.get("group", "") != "" or ref.get("kind", "Service") != "Service":
        return None
    if ref.get("namespace", spec.namespace) != spec.namespace:
        return None
    return {spec.stable_service: "stable", spec.canary_service: "canary"}.get(ref.get("name", ""))


def is_managed(spec: GatewayAPIRouterSpec, rule: Obj) -> bool:
    found = {side_of(spec, ref) for ref in rule.get("backendRefs") or []}
    return {"stable", "canary"} <= found


def managed_rules(spec: GatewayAPIRouterSpec, rules: list[Obj], where: str) -> list[int]:
    """Indexes of the rules whose weights move; ``InvalidSpec`` if there are none, or one
    has a third backend."""
    indexes = [i for i, rule in enumerate(rules) if is_managed(spec, rule)]
    if not indexes:
        raise failure(
            INVALID_SPEC,
            f"{where} has no rule with both {spec.stable_service} and {spec.canary_service} "
            "in its backendRefs",
        )
    for i in indexes:
        if any(side_of(spec, ref) is None for ref in rules[i]["backendRefs"]):
            raise failure(
                INVALID_SPEC,
                f"{where} rule {i} has backends besides {spec.stable_service} and "
                f"{spec.canary_service}: {rules[i]['backendRefs']}",
            )
    return indexes


def weighted(spec: GatewayAPIRouterSpec, rule: Obj, weights: Weights) -> Obj:
    shifted = copy.deepcopy(rule)
    for ref in shifted["backendRefs"]:
        ref["weight"] = weights.stable if side_of(spec, ref) == "stable" else weights.canary
    return shifted


def header_rule(spec: GatewayAPIRouterSpec, route: HeaderRoute, base: Obj) -> Obj:
    """A rule for requests matching ``route`` within ``base``'s matches, to the canary only."""
    headers = [
        {
            "name": m.header_name,
            "type": _MATCH_TYPES[m.header_value.kind],
            "value": m.header_value.value,
        }
        for m in route.match
    ]
    matches = [
        copy.deepcopy(m) | {"headers": [*(m.get("headers") or []), *headers]}
        for m in base.get("matches") or [{}]
    ]
    canary = next(r for r in base["backendRefs"] if side_of(spec, r) == "canary")
    single = {k: v for k, v in canary.items() if k != "weight"}
    return copy.deepcopy(base) | {"name": route.name, "matches": matches, "backendRefs": [single]}


def desired_rules(
    spec: GatewayAPIRouterSpec,
    http_route: Obj,
    weights: Weights | None,
    routes: Sequence[HeaderRoute] | None,
) -> tuple[list[Obj], list[str]]:
    """``spec.rules`` with the managed rules at ``weights`` and exactly the header ``routes``
    first (None for either: as they are), and the header route names to record."""
    where = f"HTTPRoute {spec.namespace}/{http_route['metadata']['name']}"
    rules: list[Obj] = (http_route.get("spec") or {}).get("rules") or []
    owned = owned_routes(http_route)
    ours = [r for r in rules if r.get("name") in owned]
    rest = [r for r in rules if r.get("name") not in owned]
    indexes = managed_rules(spec, rest, where)
    if weights is not None:
        for i in indexes:
            rest[i] = weighted(spec, rest[i], weights)
    if routes is None:
        return ours + rest, [r["name"] for r in ours]
    problem = spec.header_routes_problem(routes)
    taken = {str(r.get("name")) for r in rest} & {r.name for r in routes}
    if problem is not None or taken:
        raise failure(INVALID_SPEC, problem or f"{where} already has rules named {sorted(taken)}")
    return [header_rule(spec, r, rest[indexes[0]]) for r in routes] + rest, [r.name for r in routes]


def read_weights(spec: GatewayAPIRouterSpec, http_route: Obj) -> Weights:
    """The split of the first managed rule, in percent of its two weights (Gateway API's
    default weight is 1)."""
    where = f"HTTPRoute {spec.namespace}/{http_route['metadata']['name']}"
    owned = owned_routes(http_route)
    rules = [
        r for r in (http_route.get("spec") or {}).get("rules") or [] if r.get("name") not in owned
    ]
    rule = rules[managed_rules(spec, rules, where)[0]]
    by_side = {side_of(spec, ref): int(ref.get("weight", 1)) for ref in rule["backendRefs"]}
    total = by_side["stable"] + by_side["canary"]
    if total == 0:
        raise failure(INVALID_SPEC, f"{where}: both backends at weight 0 route nothing")
    canary = round(100 * by_side["canary"] / total)
    return Weights.canary_at(canary)


def read_header_routes(http_route: Obj) -> list[HeaderRoute]:
    owned = owned_routes(http_route)
    kinds = {v: k for k, v in _MATCH_TYPES.items()}
    found = []
    for rule in (http_route.get("spec") or {}).get("rules") or []:
        if rule.get("name") in owned:
            headers = ((rule.get("matches") or [{}])[0]).get("headers") or []
            match = [
                HeaderMatch(
                    header_name=h["name"],
                    header_value=HeaderValue.model_validate(
                        {kinds[h.get("type", "Exact")]: h["value"]}
                    ),
                )
                for h in headers
            ]
            found.append(HeaderRoute(name=rule["name"], match=match))
    return found


class GatewayAPIRouter:
    """Weights and header routes in one HTTPRoute."""

    def __init__(self, spec: GatewayAPIRouterSpec, clusters: KubeClients) -> None:
        self.spec = spec
        self.api = Api(clusters.api(spec.context))
        self.what = f"HTTPRoute {spec.namespace}/{spec.http_route}"

    def set_weights(self, weights: Weights) -> None:
        changed = self._apply(weights, None)
        log.info(
            "gateway_api_weights_set" if changed else "gateway_api_weights_unchanged",
            http_route=self.what,
            **weights.model_dump(),
        )

    def get_weights(self) -> Weights:
        return read_weights(self.spec, self._read())

    def set_header_routes(self, routes: Sequence[HeaderRoute]) -> None:
        changed = self._apply(None, routes)
        log.info(
            "gateway_api_header_routes_set" if changed else "gateway_api_header_routes_unchanged",
            http_route=self.what,
            routes=[r.name for r in routes],
        )

    def get_header_routes(self) -> list[HeaderRoute]:
        return read_header_routes(self._read())

    def _apply(self, weights: Weights | None, routes: Sequence[HeaderRoute] | None) -> bool:
        def attempt() -> bool:
            http_route = self._read()
            rules, names = desired_rules(self.spec, http_route, weights, routes)
            patch = list_patch(http_route, "/spec/rules", rules, names)
            if patch is None:
                return False
            self.api.patch(self._path(), patch, self.what)
            return True

        return optimistically(f"change {self.what}", attempt)

    def _read(self) -> Obj:
        return self.api.get(self._path(), self.what)

    def _path(self) -> str:
        return namespaced(API_VERSION, self.spec.namespace, "httproutes", self.spec.http_route)
