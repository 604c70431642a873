"""The metrics-provider seam: take one measurement, get a ``Reading`` back."""

from __future__ import annotations

from typing import Protocol

from pydantic import ConfigDict, Field, JsonValue

from activities.metrics.judge_spec import Judgement
from activities.model import Model


class Reading(Model):
    """What one measurement saw.

    ``values``: one number per series (Prometheus; a range query gives every sample), NaN
    and ±Inf included. ``result``: a web metric's JSON value (or its text body); ``None``
    when ``values`` say it all. ``phase``: set by a provider that judges by itself (the
    baseline judge). ``metadata``: Argo's measurement metadata (the resolved query).
    """

    # NaN and ±Inf travel as "NaN"/"Infinity" strings: plain JSON has no spelling for them.
    model_config = ConfigDict(**Model.model_config, ser_json_inf_nan="strings")

    values: list[float] = Field(default_factory=list)
    result: JsonValue = None
    phase: str | None = None
    judgement: Judgement | None = None
    metadata: dict[str, str] = Field(default_factory=dict)


class MetricsProvider(Protocol):
    """Takes one measurement.

    Raises ``MetricUnavailable`` for errors that are the provider's or the network's
    fault; anything the query itself makes impossible (bad PromQL, a JSONPath that matches
    nothing) raises it too, with the provider's message.
    """

    def measure(self) -> Reading: ...


class MetricUnavailable(Exception):
    """The provider could not produce a value; the message says why."""
