"""Picks the router a spec's ``router:`` section names; adding a kind is one ``case``."""

from __future__ import annotations

from activities.clients import Clients
from activities.errors import INVALID_SPEC, failure
from activities.routing.base import ServerRotation, TrafficRouter
from activities.routing.haproxy.router import HAProxyRouter
from activities.routing.nginx import NginxRouter
from activities.routing.nop import NopRouter
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
    raise AssertionError(f"no router for {spec.kind}")  # a RouterSpec field without a case


def rotation_for(spec: RouterSpec, clients: Clients) -> ServerRotation:
    """The router for ``spec`` as a server list whose servers go in and out of rotation;
    ``InvalidSpec`` for a router without servers."""
    router = router_for(spec, clients)
    if not isinstance(router, ServerRotation):
        raise failure(INVALID_SPEC, f"router {spec.kind} has no servers to take out of rotation")
    return router
