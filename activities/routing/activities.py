"""Temporal activities that move traffic. Sync ``def``: the worker runs them on a thread pool.

Each heartbeats while it works (``keep_alive``), so workflows give them a heartbeat timeout
of a few seconds: a worker killed mid-shift costs seconds, not the start-to-close timeout.

All are declarative (``set canary to 25``, ``drain 10.0.0.3:80``), so a retry after a crash
re-applies the same state; the router skips the reload when it already holds it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import errors
from activities.clients import Clients
from activities.heartbeat import keep_alive
from activities.log_fields import attempt, ms_since
from activities.routing.base import HeaderRoute, ServerState, Weights
from activities.routing.factory import header_routing_for, rotation_for, router_for
from activities.routing.models import (
    GetServerStatesInput,
    GetWeightsInput,
    SetHeaderRoutesInput,
    SetServerStatesInput,
    SetWeightInput,
    TrafficInput,
)
from activities.routing.spec import RouterSpec

log = structlog.get_logger()


class RouterActivities:
    """The traffic activities, building each router with the worker's ``clients``. An
    agent's (``host``: its ``--host NAME``) refuse an input meant for another load balancer."""

    def __init__(self, clients: Clients, host: str | None = None) -> None:
        self.clients = clients
        self.host = host

    def all(self) -> list[Callable[..., Any]]:
        """Every traffic activity: what a worker registers, and all an agent does."""
        return [
            self.set_weight,
            self.get_weights,
            self.set_server_states,
            self.get_server_states,
            self.set_header_routes,
        ]

    @activity.defn(name="set_weight")
    def set_weight(self, input: SetWeightInput) -> Weights:
        """Set the traffic split and return what the router reads back afterwards."""
        started = time.monotonic()
        self._require_mine("set_weight", input)
        router = router_for(input.router, self.clients)
        with keep_alive():
            router.set_weights(input.weights)
            applied = router.get_weights()
        _log(
            "set_weight",
            input.router,
            started,
            key=input.key,
            attempt=attempt(),
            **applied.model_dump(),
        )
        return applied

    @activity.defn(name="get_weights")
    def get_weights(self, input: GetWeightsInput) -> Weights:
        """The traffic split the router currently holds."""
        started = time.monotonic()
        self._require_mine("get_weights", input)
        with keep_alive():
            weights = router_for(input.router, self.clients).get_weights()
        _log("get_weights", input.router, started, **weights.model_dump())
        return weights

    @activity.defn(name="set_server_states")
    def set_server_states(self, input: SetServerStatesInput) -> dict[str, ServerState]:
        """Drain, take out or bring back servers; returns every server's state read back."""
        started = time.monotonic()
        self._require_mine("set_server_states", input)
        router = rotation_for(input.router, self.clients)
        with keep_alive():
            router.set_server_states(input.states)
            applied = router.get_server_states()
        states = {address: str(state) for address, state in input.states.items()}
        _log(
            "set_server_states",
            input.router,
            started,
            key=input.key,
            states=states,
            attempt=attempt(),
        )
        return applied

    @activity.defn(name="get_server_states")
    def get_server_states(self, input: GetServerStatesInput) -> dict[str, ServerState]:
        """Every server's state (``ready``, ``drain``, ``maint``) by address."""
        started = time.monotonic()
        self._require_mine("get_server_states", input)
        with keep_alive():
            states = rotation_for(input.router, self.clients).get_server_states()
        not_ready = {a: str(s) for a, s in states.items() if s != "ready"}
        _log("get_server_states", input.router, started, not_ready=not_ready)
        return states

    @activity.defn(name="set_header_routes")
    def set_header_routes(self, input: SetHeaderRoutesInput) -> list[HeaderRoute]:
        """Hold exactly ``routes`` (by header, to the canary); returns what it reads back."""
        started = time.monotonic()
        self._require_mine("set_header_routes", input)
        router = header_routing_for(input.router, self.clients)
        with keep_alive():
            router.set_header_routes(input.routes)
            applied = router.get_header_routes()
        names = [route.name for route in applied]
        _log("set_header_routes", input.router, started, key=input.key, routes=names)
        return applied

    def _require_mine(self, activity: str, input: TrafficInput) -> None:
        """On an agent, refuse another load balancer's input: applied here it would put
        that host's files and commands on this one (two agents polling one task queue).
        Inputs naming no instance (the central worker's, or sent before instances were
        named in inputs) are applied as they always were."""
        if self.host is None or input.instance is None or input.instance == self.host:
            return
        raise ApplicationError(
            f"{activity} for load balancer {input.instance} reached the agent of "
            f"{self.host}: refused, it would apply {input.instance}'s router here. Each "
            "agent needs its own task queue: check the instances' taskQueue and the "
            "agents' --host/--task-queue",
            type=errors.WRONG_LOAD_BALANCER,
            non_retryable=True,
        )


def _log(event: str, router: RouterSpec, started: float, **fields: object) -> None:
    # Only the router's kind, never its spec: router specs may one day carry credentials.
    log.info(event, router=router.kind, **fields, duration_ms=ms_since(started))
