"""Picks the router implementation named in a spec's ``router:`` section."""

from __future__ import annotations

from typing import ClassVar

from activities.model import OneOf
from activities.routing.base import TrafficRouter
from activities.routing.haproxy import HAProxyRouter, HAProxyRouterSpec
from activities.routing.nginx import NginxRouter, NginxRouterSpec


class RouterSpec(OneOf):
    """One-of: exactly one router kind is set (``router: {nginx: {...}}``)."""

    label: ClassVar[str] = "router"

    nginx: NginxRouterSpec | None = None
    haproxy: HAProxyRouterSpec | None = None


def router_for(spec: RouterSpec) -> TrafficRouter:
    """The router for ``spec``; adding a kind means a field above and a branch here."""
    if spec.nginx is not None:
        return NginxRouter(spec.nginx)
    if spec.haproxy is not None:
        return HAProxyRouter(spec.haproxy)
    raise AssertionError(f"RouterSpec validator let through {spec!r}")  # unreachable
