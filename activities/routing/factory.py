"""Picks the router implementation named in a spec's ``router:`` section."""

from __future__ import annotations

from pydantic import model_validator

from activities.model import Model
from activities.routing.base import TrafficRouter
from activities.routing.haproxy import HAProxyRouter, HAProxyRouterSpec
from activities.routing.nginx import NginxRouter, NginxRouterSpec


class RouterSpec(Model):
    """One-of: exactly one router kind is set (``router: {nginx: {...}}``)."""

    nginx: NginxRouterSpec | None = None
    haproxy: HAProxyRouterSpec | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> RouterSpec:
        chosen = [name for name in type(self).model_fields if getattr(self, name) is not None]
        if len(chosen) != 1:
            kinds = ", ".join(type(self).model_fields)
            got = ", ".join(chosen) or "none"
            raise ValueError(f"router: set exactly one of {kinds}; got {got}")
        return self

    @property
    def kind(self) -> str:
        """The name of the router kind that is set, e.g. ``"nginx"``."""
        return next(name for name in type(self).model_fields if getattr(self, name) is not None)


def router_for(spec: RouterSpec) -> TrafficRouter:
    """The router for ``spec``; adding a kind means a field above and a branch here."""
    if spec.nginx is not None:
        return NginxRouter(spec.nginx)
    if spec.haproxy is not None:
        return HAProxyRouter(spec.haproxy)
    raise AssertionError(f"RouterSpec validator let through {spec!r}")  # unreachable
