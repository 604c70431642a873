"""In-memory router for tests and dry runs: remembers weights and states, touches nothing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from activities.routing.base import ServerState, Weights, merge_states


class NopRouter:
    """TrafficRouter that only holds what it was last given (100 % stable at first).

    With ``servers`` it refuses states for other addresses as real routers do; without,
    any address is accepted and remembered.
    """

    def __init__(self, weights: Weights | None = None, servers: Sequence[str] = ()) -> None:
        self.weights = weights or Weights(stable=100, canary=0)
        self.servers = list(servers)
        self.states: dict[str, ServerState] = dict.fromkeys(self.servers, ServerState.READY)
        self.calls: list[Weights] = []
        self.state_calls: list[dict[str, ServerState]] = []

    def set_weights(self, weights: Weights) -> None:
        """Record ``weights``; ``calls`` keeps every request so tests can count shifts."""
        self.calls.append(weights)
        self.weights = weights

    def get_weights(self) -> Weights:
        return self.weights

    def set_server_states(self, states: Mapping[str, ServerState]) -> None:
        """Record ``states``; ``state_calls`` keeps every request."""
        known = self.servers or [*self.states, *(s for s in states if s not in self.states)]
        self.states = merge_states(self.states, states, known)
        self.state_calls.append(dict(states))

    def get_server_states(self) -> dict[str, ServerState]:
        return dict(self.states)
