"""Picks the router a spec's ``router:`` section names; adding a kind is one ``case``."""

from __future__ import annotations

from activities.clients import Clients
from activities.errors import INVALID_SPEC, failure
from activities.routing.base import HeaderRouting, ServerRotation, TrafficRouter
from activities.routing.gateway_api import GatewayAPIRouter
from activities.routing.haproxy.router import HAProxyRouter
from activities.routing.ingress_nginx import IngressNginxRouter
from activities.routing.istio import IstioRouter
from activities.routing.kube_spec import (
    GatewayAPIRouterSpec,
    IngressNginxRouterSpec,
    IstioRouterSpec,
    ReplicasRouterSpec,
    ServiceRouterSpec,
)
from activities.routing.nginx import NginxRouter
from activities.routing.nop import NopRouter
from activities.routing.replicas import ReplicasRouter
from activities.routing.service import ServiceRouter
from activities.routing.spec import HAProxyRouterSpec, NginxRouterSpec, NopRouterSpec, RouterSpec


def router_for(spec: RouterSpec, clients: Clients) -> TrafficRouter:
    """The router for ``spec``, built with what the worker built (``clients``)."""
    match spec.selected():
        case NginxRouterSpec() as nginx:
            return NginxRouter(nginx)
        case HAProxyRouterSpec() as haproxy:
            return HAProxyRouter(haproxy)
        case NopRouterSpec() as nop:
            return NopRouter(nop, clients.nop)
        case ServiceRouterSpec() as service:
            return ServiceRouter(service, clients.kubernetes)
        case IngressNginxRouterSpec() as ingress:
            return IngressNginxRouter(ingress, clients.kubernetes)
        case IstioRouterSpec() as istio:
            return IstioRouter(istio, clients.kubernetes)
        case GatewayAPIRouterSpec() as gateway:
            return GatewayAPIRouter(gateway, clients.kubernetes)
        case ReplicasRouterSpec() as replicas:
            return ReplicasRouter(replicas, clients.kubernetes)
    raise AssertionError(f"no router for {spec.kind}")  # a RouterSpec field without a case


def rotation_for(spec: RouterSpec, clients: Clients) -> ServerRotation:
    """The router for ``spec`` as a server list whose servers go in and out of rotation;
    ``InvalidSpec`` for a router without servers."""
    router = router_for(spec, clients)
    if not isinstance(router, ServerRotation):
        raise failure(INVALID_SPEC, f"router {spec.kind} has no servers to take out of rotation")
    return router


def header_routing_for(spec: RouterSpec, clients: Clients) -> HeaderRouting:
    """The router for ``spec`` as one that routes by header; ``InvalidSpec`` for one that
    cannot (lint says so first: ``RouterSpec.header_routes_problem``)."""
    router = router_for(spec, clients)
    if not isinstance(router, HeaderRouting):
        raise failure(INVALID_SPEC, f"router {spec.kind} cannot route by header (setHeaderRoute)")
    return router
