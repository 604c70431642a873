"""In-memory router for tests and dry runs: remembers weights, touches nothing."""

from __future__ import annotations

from activities.routing.base import Weights


class NopRouter:
    """TrafficRouter that only holds the weights it was last given (100 % stable at first)."""

    def __init__(self, weights: Weights | None = None) -> None:
        self.weights = weights or Weights(stable=100, canary=0)
        self.calls: list[Weights] = []

    def set_weights(self, weights: Weights) -> None:
        """Record ``weights``; ``calls`` keeps every request so tests can count shifts."""
        self.calls.append(weights)
        self.weights = weights

    def get_weights(self) -> Weights:
        return self.weights
