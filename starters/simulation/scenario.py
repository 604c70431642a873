"""A rehearsal's script: what each analysis metric measures, minute by minute, and what the
simulated operator does when the rollout waits for a human.

    metrics:
      error-rate:                 # a metric name from the spec's templates
        - {until: 40m, value: 0.002}   # from the rollout's start
        - {value: 0.05}                # from then on
      latency: 0.21               # the same all along
      web-check:
        - {result: {ok: true}}    # a web metric's JSON
      judge:
        - {until: 1h, value: 98}  # a judge metric: the score
        - {value: 40}
      flaky:
        - {until: 5m, error: "prometheus unreachable"}   # an Error measurement
        - {value: 0}
    default: 0                    # for metrics not listed (without it, every one must be)
    whenPaused: promote           # or abort: what happens at a pause with no duration
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

import yaml
from pydantic import Field, JsonValue, ValidationError, model_validator

from activities.model import Model
from workflows.core.durations import Duration, parse_duration
from workflows.core.spec import SpecError, validation_problems


class Piece(Model):
    """One stretch of a metric's script: ``until`` (from the rollout's start; the last piece
    has none), then exactly one of ``value`` (one number per series), ``result`` or ``error``."""

    until: Duration | None = None
    value: float | list[float] | None = None
    result: JsonValue = None
    error: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one_reading(self) -> Piece:
        given = [n for n in ("value", "result", "error") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError(f"set exactly one of value, result, error; got {given or 'none'}")
        return self

    @property
    def ends(self) -> timedelta | None:
        return None if self.until is None else parse_duration(self.until)


class Scenario(Model):
    metrics: dict[str, float | list[Piece]] = Field(default_factory=dict)
    default: float | None = None
    when_paused: Literal["promote", "abort"] = "promote"

    @model_validator(mode="after")
    def _scripts_in_order(self) -> Scenario:
        for name, script in self.metrics.items():
            if isinstance(script, float | int):
                continue
            ends = [p.ends for p in script]
            if not script or ends[-1] is not None:
                raise ValueError(f"metrics.{name}: the last piece must have no until")
            bounded = [e for e in ends if e is not None]
            if None in ends[:-1] or bounded != sorted(bounded):
                raise ValueError(f"metrics.{name}: each piece but the last needs a later until")
        return self

    def piece(self, metric: str, elapsed: timedelta) -> Piece:
        """What ``metric`` measures ``elapsed`` after the rollout started."""
        script = self.metrics.get(metric, self.default)
        if script is None:
            raise KeyError(metric)  # load_scenario made sure every metric has a script
        if isinstance(script, float | int):
            return Piece(value=float(script))
        return next(p for p in script if p.ends is None or elapsed < p.ends)


def load_scenario(text: str, source: str, metric_names: set[str]) -> Scenario:
    """The scenario in ``text``, checked against the spec's metric names; ``SpecError``."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SpecError(source, [f"(yaml): {exc}"]) from None
    try:
        scenario = Scenario.model_validate(document or {})
    except ValidationError as exc:
        raise SpecError(source, validation_problems(exc)) from None
    problems = [
        f"metrics.{name}: no analysis metric of that name in the spec "
        f"(have: {', '.join(sorted(metric_names)) or 'none'})"
        for name in sorted(set(scenario.metrics) - metric_names)
    ]
    missing = sorted(metric_names - set(scenario.metrics))
    if missing and scenario.default is None:
        problems.append(f"metrics: no script for {', '.join(missing)} (or set default)")
    if problems:
        raise SpecError(source, problems)
    return scenario
