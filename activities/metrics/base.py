"""The metrics-provider seam: run one query, get numbers back."""

from __future__ import annotations

from typing import Protocol


class MetricsProvider(Protocol):
    """Runs a query and returns one value per series (an empty list when there is no data).

    Raises ``MetricUnavailable`` for errors that are the provider's or the network's
    fault; anything the query itself makes impossible (bad PromQL) raises it too, with the
    provider's message.
    """

    def query(self, query: str) -> list[float]: ...


class MetricUnavailable(Exception):
    """The provider could not produce a value; the message says why."""
