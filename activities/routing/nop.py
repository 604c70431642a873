"""Nop router: a dry run. It moves no traffic and touches nothing outside the worker.

    router:
      nop: {stable: [10.0.0.1:8080], canary: [10.0.0.2:8080]}

It remembers the split and the server states it was given, so ``get_weights`` returns
what ``set_weights`` set and a rollout runs through every step, analysis and pause as it
would in front of a real load balancer; the worker's log shows each change
(``nop_weights_set``, ``nop_server_states_set``).

Where it remembers: in the worker process, in the ``NopMemory`` of the ``Clients`` the
worker built, keyed by the two server lists; every activity on that worker shares it. So:
a new worker starts at stable 100 % with every server ready; several workers on one task
queue each remember their own, and a rollout whose activities land on two of them may read
back another split than it set; two specs with the same server lists share one split.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

import structlog

from activities.routing.base import ServerState, Weights, merge_states
from activities.routing.spec import NopRouterSpec

log = structlog.get_logger()


@dataclass
class _Routes:
    weights: Weights = field(default_factory=lambda: Weights(stable=100, canary=0))
    states: dict[str, ServerState] = field(default_factory=dict)


class NopMemory:
    """What nop routers were told, per pair of server lists; one per worker (``Clients``)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()  # activities run on the worker's thread pool
        self._routes: dict[tuple[tuple[str, ...], tuple[str, ...]], _Routes] = {}

    def routes(self, spec: NopRouterSpec) -> _Routes:
        """The remembered routes of ``spec``'s server lists (call with ``lock`` held)."""
        return self._routes.setdefault((tuple(spec.stable), tuple(spec.canary)), _Routes())


class NopRouter:
    """Weights and server rotation held in :class:`NopMemory`."""

    def __init__(self, spec: NopRouterSpec, memory: NopMemory) -> None:
        self.spec = spec
        self.memory = memory

    def set_weights(self, weights: Weights) -> None:
        with self.memory.lock:
            self.memory.routes(self.spec).weights = weights
        log.info("nop_weights_set", servers=self.spec.servers, **weights.model_dump())

    def get_weights(self) -> Weights:
        with self.memory.lock:
            return self.memory.routes(self.spec).weights

    def set_server_states(self, states: Mapping[str, ServerState]) -> None:
        """Refuses addresses the spec does not list, as the real routers do."""
        with self.memory.lock:
            routes = self.memory.routes(self.spec)
            routes.states = merge_states(routes.states, states, self.spec.servers)
        log.info("nop_server_states_set", states={a: str(s) for a, s in states.items()})

    def get_server_states(self) -> dict[str, ServerState]:
        with self.memory.lock:
            return merge_states(self.memory.routes(self.spec).states, {}, self.spec.servers)
