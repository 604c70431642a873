"""The ``router:`` vocabulary for Kubernetes: one model per router kind, apart from the
implementations (``service.py``, ``ingress_nginx.py``, ``istio.py``, ``gateway_api.py``), so
reading a spec never imports the ``kubernetes`` package.

    router:
      service:      {activeService: checkout, previewService: checkout-preview,
                     stableSelector: {app: checkout}, canarySelector: {app: checkout-canary}}
      ingressNginx: {stableIngress: checkout, stableService: checkout,
                     canaryService: checkout-canary}
      istio:        {virtualService: {name: checkout, routes: [primary]},
                     stableService: checkout-stable, canaryService: checkout-canary}
      gatewayAPI:   {httpRoute: checkout, stableService: checkout-stable,
                     canaryService: checkout-canary}
      replicas:     {deployment: checkout, replicas: 4, service: checkout}

Each also names the worker's kubeconfig ``context`` (omitted: the worker's current context,
or its in-cluster service account) and the ``namespace`` the objects live in. No spec carries
credentials: the worker holds them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal

from pydantic import Field, model_validator

from activities.kubernetes.names import (
    AnnotationPrefix,
    ContextName,
    DnsLabel,
    ObjectName,
    Selector,
    ServiceName,
)
from activities.model import Model
from activities.platforms.spec import CANARY_SUFFIX, DeploymentName
from activities.routing.base import HeaderRoute


class KubeObjects(Model):
    """Where a Kubernetes router's objects are: the worker's kubeconfig context and a namespace."""

    context: ContextName | None = None
    """The worker's kubeconfig context; omitted: its current context (or in-cluster config)."""
    namespace: DnsLabel = "default"


class HeaderRouted:
    """A router spec that can send requests matching headers to the canary; the spec side of
    ``activities.routing.base.HeaderRouting``, so lint can say what a router cannot do."""

    def header_routes_problem(self, routes: Sequence[HeaderRoute]) -> str | None:
        """Why this router cannot hold ``routes`` all at once; None when it can."""
        return None


def _no_prefix(router: str, routes: Sequence[HeaderRoute]) -> str | None:
    for route in routes:
        for match in route.match:
            if match.header_value.prefix is not None:
                return (
                    f"{router} matches a header by exact value or regex, not by prefix "
                    f"(route {route.name}, header {match.header_name})"
                )
    return None


class ServiceRouterSpec(KubeObjects):
    """Blue-green by Service selector (Argo's ``activeService``/``previewService``).

    ``activeService`` selects the pods of the side holding 100 % (``stableSelector`` or
    ``canarySelector``); ``previewService``, when set, always selects the canary side, so the
    new version is reachable before the switch. A selector switch moves all traffic at once:
    only 100/0 and 0/100 splits exist.
    """

    active_service: ServiceName
    preview_service: ServiceName | None = None
    stable_selector: Selector
    canary_selector: Selector

    @model_validator(mode="after")
    def _distinct(self) -> ServiceRouterSpec:
        if self.stable_selector == self.canary_selector:
            raise ValueError("canarySelector: must differ from stableSelector")
        if self.preview_service == self.active_service:
            raise ValueError("previewService: must differ from activeService")
        return self


class IngressNginxRouterSpec(KubeObjects, HeaderRouted):
    """ingress-nginx canary: deployflow owns a canary Ingress beside ``stableIngress``.

    The canary Ingress copies the stable one's rules with ``stableService`` backends
    replaced by ``canaryService`` and carries ``<prefix>/canary: "true"``,
    ``canary-weight`` and (for a header route) ``canary-by-header`` with
    ``canary-by-header-value`` (exact) or ``canary-by-header-pattern`` (regex).
    """

    stable_ingress: ObjectName
    stable_service: ServiceName
    canary_service: ServiceName
    canary_ingress: ObjectName | None = None
    """Default ``<stableIngress>-canary``."""
    annotation_prefix: AnnotationPrefix = "nginx.ingress.kubernetes.io"

    @property
    def canary_ingress_name(self) -> str:
        return self.canary_ingress or f"{self.stable_ingress}-canary"[:253]

    @model_validator(mode="after")
    def _distinct(self) -> IngressNginxRouterSpec:
        if self.stable_service == self.canary_service:
            raise ValueError("canaryService: must differ from stableService")
        if self.canary_ingress_name == self.stable_ingress:
            raise ValueError("canaryIngress: must differ from stableIngress")
        return self

    def header_routes_problem(self, routes: Sequence[HeaderRoute]) -> str | None:
        if len(routes) > 1:
            names = ", ".join(r.name for r in routes)
            return f"ingress-nginx holds one header route at a time (canary-by-header); got {names}"
        if routes and len(routes[0].match) > 1:
            return f"ingress-nginx matches one header per route (route {routes[0].name})"
        return _no_prefix("ingress-nginx", routes)


class VirtualServiceRef(Model):
    """Argo's ``istio.virtualService``: its name and the http routes whose weights move
    (by route name; omitted: the VirtualService's only http route)."""

    name: ObjectName
    routes: list[Annotated[str, Field(min_length=1, max_length=253)]] = Field(default_factory=list)


class DestinationRuleRef(Model):
    """Argo's ``istio.destinationRule``: subset-based routing, one host, two subsets."""

    name: ObjectName
    stable_subset_name: DnsLabel
    canary_subset_name: DnsLabel

    @model_validator(mode="after")
    def _distinct(self) -> DestinationRuleRef:
        if self.stable_subset_name == self.canary_subset_name:
            raise ValueError("canarySubsetName: must differ from stableSubsetName")
        return self


class IstioRouterSpec(KubeObjects, HeaderRouted):
    """Istio ``VirtualService`` weights (``networking.istio.io/v1``).

    Host-based: the routes' destinations are the hosts ``stableService`` and
    ``canaryService``. Subset-based: ``destinationRule`` names the subsets of one host (the
    DestinationRule must define both). Header routes go first in ``spec.http``.
    """

    virtual_service: VirtualServiceRef | None = None
    virtual_services: list[VirtualServiceRef] = Field(default_factory=list)
    """Argo's ``virtualServices``: several VirtualServices, shifted alike, one after another."""
    stable_service: ServiceName | None = None
    canary_service: ServiceName | None = None
    destination_rule: DestinationRuleRef | None = None

    @model_validator(mode="after")
    def _one_way(self) -> IstioRouterSpec:
        if (self.virtual_service is None) == (not self.virtual_services):
            raise ValueError("set exactly one of virtualService or virtualServices")
        hosts = (self.stable_service, self.canary_service)
        if self.destination_rule is None and None in hosts:
            raise ValueError("stableService and canaryService: required without destinationRule")
        if self.destination_rule is not None and hosts != (None, None):
            raise ValueError(
                "destinationRule: subset-based routing names no stableService/canaryService"
            )
        if self.stable_service is not None and self.stable_service == self.canary_service:
            raise ValueError("canaryService: must differ from stableService")
        return self

    @property
    def all_virtual_services(self) -> list[VirtualServiceRef]:
        return [self.virtual_service] if self.virtual_service else self.virtual_services

    @property
    def only(self) -> VirtualServiceRef:
        """The VirtualService of a spec that names one (each of ``each()``)."""
        assert self.virtual_service is not None
        assert not self.virtual_services
        return self.virtual_service

    def each(self) -> list[IstioRouterSpec]:
        """One spec per VirtualService, in order."""
        return [
            self.model_copy(update={"virtual_service": ref, "virtual_services": []})
            for ref in self.all_virtual_services
        ]

    @property
    def mode(self) -> Literal["host", "subset"]:
        return "host" if self.destination_rule is None else "subset"


class GatewayAPIRouterSpec(KubeObjects, HeaderRouted):
    """Gateway API ``HTTPRoute`` ``backendRefs`` weights (``gateway.networking.k8s.io/v1``):
    every rule that has both Services as backends; header routes are rules of their own."""

    http_route: ObjectName
    stable_service: ServiceName
    canary_service: ServiceName

    @model_validator(mode="after")
    def _distinct(self) -> GatewayAPIRouterSpec:
        if self.stable_service == self.canary_service:
            raise ValueError("canaryService: must differ from stableService")
        return self

    def header_routes_problem(self, routes: Sequence[HeaderRoute]) -> str | None:
        return _no_prefix("Gateway API", routes)


class ReplicasRouterSpec(KubeObjects):
    """Argo's basic canary (no ``trafficRouting``): one Service selects the pods of both the
    stable Deployment and deployflow's ``<deployment>-canary``, and a weight is approximated
    by how many pods each runs: ``replicas`` in all, the canary's share as close to the
    weight as whole pods allow (at least one pod each between 1 and 99 %).

    ``replicas`` omitted: the stable Deployment's own count when the canary first gets pods
    (recorded on it until traffic is back on stable). ``service``, when named, is checked to
    select both Deployments' pods.
    """

    deployment: DeploymentName
    replicas: int | None = Field(default=None, ge=1, le=10_000)
    service: ServiceName | None = None

    @property
    def canary_deployment(self) -> str:
        return self.deployment + CANARY_SUFFIX
