"""``provider: {judge: {...}}``: Kayenta's NetflixACAJudge as a metric provider — its
configuration, and the judgement it records (per metric: classification, ratio, interval).

Each metric's ``query`` names ``{{scope}}`` where the canary and the baseline differ (a
version label, say); it runs as a range query over the last ``lookback`` once with
``canaryScope`` and once with ``baselineScope`` (by default ``{{version}}`` and
``{{stableVersion}}``). ``activities/metrics/judge.py`` does the statistics.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from activities.durations import TemplatedDuration
from activities.metrics.prometheus_spec import Connection
from activities.model import Model

Classification = Literal["Pass", "High", "Low", "Nodata", "NodataFailMetric", "Error"]
Verdict = Literal["Pass", "Marginal", "Fail"]
VERDICT_PHASE: dict[str, str] = {"Pass": "Successful", "Marginal": "Inconclusive", "Fail": "Failed"}
"""How a judgement becomes an Argo measurement phase."""


class EffectSize(Model):
    """Kayenta's effect-size limits: a significant difference must also be this large.

    ``meanRatio`` (canary mean / baseline mean; default limits 1.0) or ``cles`` (the share of
    canary-baseline pairs where the canary is higher; default limits 0.5).
    """

    measure: Literal["meanRatio", "cles"] = "meanRatio"
    allowed_increase: float | None = Field(default=None, gt=0)
    allowed_decrease: float | None = Field(default=None, gt=0)
    critical_increase: float | None = Field(default=None, gt=0)
    critical_decrease: float | None = Field(default=None, gt=0)

    def limit(
        self, name: Literal["allowed", "critical"], way: Literal["increase", "decrease"]
    ) -> float:
        value = getattr(self, f"{name}_{way}")
        if value is not None:
            return float(value)
        return 0.5 if self.measure == "cles" else 1.0


class JudgeMetric(Model):
    name: str = Field(min_length=1, max_length=100)
    query: str = Field(min_length=1)
    groups: list[str] = Field(default_factory=list)
    """The groups whose score this metric counts in; default: a group of its own name."""
    direction: Literal["increase", "decrease", "either"] = "either"
    nan_strategy: Literal["remove", "replace"] = "remove"
    critical: bool = False
    """Fail the whole judgement (score 0) when this metric is High/Low beyond the critical
    effect size, or has no data."""
    must_have_data: bool = False
    effect_size: EffectSize = Field(default_factory=EffectSize)

    @model_validator(mode="after")
    def _names_its_scope(self) -> JudgeMetric:
        if not re.search(r"\{\{\s*scope\s*\}\}", self.query):
            raise ValueError(
                "query must contain {{scope}} where canary and baseline differ "
                '(e.g. version="{{scope}}")'
            )
        return self

    @property
    def group_names(self) -> list[str]:
        return self.groups or [self.name]


class Thresholds(Model):
    """Score at or above ``pass`` is Successful, at or above ``marginal`` Inconclusive, else
    Failed (Kayenta's canary score thresholds)."""

    pass_: float = Field(default=95.0, ge=0, le=100, alias="pass")
    marginal: float = Field(default=75.0, ge=0, le=100)

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if self.marginal > self.pass_:
            raise ValueError(f"marginal ({self.marginal:g}) must not exceed pass ({self.pass_:g})")
        return self


class JudgeProviderSpec(Model):
    prometheus: Connection
    metrics: list[JudgeMetric] = Field(min_length=1)
    canary_scope: str = Field(default="{{version}}", min_length=1)
    baseline_scope: str = Field(default="{{stableVersion}}", min_length=1)
    lookback: TemplatedDuration = "10m"
    """How far back each measurement compares canary and baseline (Kayenta's interval)."""
    step: TemplatedDuration = "15s"
    thresholds: Thresholds = Field(default_factory=Thresholds)
    group_weights: dict[str, float] = Field(default_factory=dict)
    """Per group, its share of the score (percent); groups not listed share what is left."""
    confidence_level: float = Field(default=0.98, gt=0.5, lt=1)
    tolerance: float = Field(default=0.25, ge=0)

    @model_validator(mode="after")
    def _consistent(self) -> JudgeProviderSpec:
        names = [m.name for m in self.metrics]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"metric names must be unique, repeated: {', '.join(repeated)}")
        groups = {g for m in self.metrics for g in m.group_names}
        unknown = sorted(set(self.group_weights) - groups)
        if unknown:
            raise ValueError(f"groupWeights names groups no metric is in: {', '.join(unknown)}")
        if (
            any(w < 0 for w in self.group_weights.values())
            or sum(self.group_weights.values()) > 100
        ):
            raise ValueError("groupWeights must be at least 0 and add up to at most 100")
        return self


class Sample(Model):
    count: int
    mean: float | None


class JudgedMetric(Model):
    model_config = ConfigDict(**Model.model_config, ser_json_inf_nan="strings")

    name: str
    classification: Classification
    reason: str | None = None
    critical: bool = False
    ratio: float | None = None
    """Canary mean / baseline mean (Kayenta's deviation); None when a mean is 0."""
    estimate: float | None = None
    """Hodges-Lehmann estimate of the canary's shift from the baseline."""
    lower: float | None = None
    upper: float | None = None
    canary: Sample
    baseline: Sample
    groups: list[str]


class GroupScore(Model):
    name: str
    score: float
    no_data: bool = False


class Judgement(Model):
    """The judge's verdict: a score from 0 to 100, Pass/Marginal/Fail, and how each metric fared."""

    score: float
    verdict: Verdict
    reason: str | None = None
    metrics: list[JudgedMetric]
    groups: list[GroupScore]

    def summary(self) -> str:
        """One line for a measurement message: ``score 62.5 (Fail): p99 High x1.31, ...``."""
        parts = [
            f"{m.name} {m.classification}" + (f" x{m.ratio:.3g}" if m.ratio is not None else "")
            for m in self.metrics
        ]
        head = f"score {self.score:g} ({self.verdict})"
        return f"{head}: {', '.join(parts)}" + (f"; {self.reason}" if self.reason else "")
