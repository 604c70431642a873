"""AnalysisTemplate vocabulary, as Argo Rollouts writes it: templates with ``args``,
metrics, ``dryRun`` and ``measurementRetention``, and the references rollouts make to them.

What Argo has and deployflow does not (``analysisRunMetadata``, a ``fieldRef`` into a
Kubernetes object) is refused naming the field; ``workflows/analysis/plan.py`` resolves
args and placeholders and checks what needs the whole rollout.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from activities.metrics.activities import MetricProviderSpec
from activities.metrics.secrets import SecretKeyRef
from activities.model import NOT_SERIALISED, Model, OneOf, refuse
from workflows.core.durations import Duration
from workflows.core.spec import Condition, Name

ArgName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$", max_length=253)]
DEFAULT_RETENTION = 10
"""Measurements kept per metric when no ``measurementRetention`` applies (Argo's default)."""


def _check_regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"not a regular expression: {exc}") from None
    return value


def _text(value: Any) -> Any:
    """Argo's arg values are strings; YAML reads ``value: 9090`` as a number."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


Regex = Annotated[str, AfterValidator(_check_regex)]


class FieldRef(Model):
    """``valueFrom.fieldRef.fieldPath``: a field of the rollout (see ``analysis/plan.py``)."""

    field_path: str = Field(min_length=1)


class ValueFrom(OneOf):
    label = "valueFrom"

    secret_key_ref: SecretKeyRef | None = None
    field_ref: FieldRef | None = None
    pod_template_hash_value: Literal["Stable", "Latest"] | None = None
    """Argo's ReplicaSet hashes; here the stable version (``spec.stableVersion``) and the
    version being rolled out (``spec.version``)."""


class Argument(Model):
    """An AnalysisTemplate argument, or a value a rollout passes for one."""

    name: ArgName
    value: Annotated[str | None, BeforeValidator(_text)] = None
    value_from: ValueFrom | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Argument:
        if self.value is not None and self.value_from is not None:
            raise ValueError(f"arg {self.name!r}: set value or valueFrom, not both")
        return self


class MetricSelector(Model):
    """``dryRun: [{metricName: regex}]``: the metrics that are measured but never decide."""

    metric_name: Regex


class RetentionRule(Model):
    """``measurementRetention: [{metricName: regex, limit: 20}]``; limit 0 = the default."""

    metric_name: Regex
    limit: int = Field(ge=0, le=1000)


class Metric(Model):
    """One AnalysisTemplate metric with Argo's semantics (see workflows/analysis/run.py)."""

    name: Name
    interval: Duration | None = None
    count: int | None = Field(default=None, ge=0)
    initial_delay: Duration | None = None
    success_condition: Condition | None = None
    failure_condition: Condition | None = None
    failure_limit: int = Field(default=0, ge=-1)
    """-1: failures never fail the metric (then ``consecutiveSuccessLimit`` decides)."""
    inconclusive_limit: int = Field(default=0, ge=0)
    consecutive_error_limit: int = Field(default=4, ge=0)
    consecutive_success_limit: int = Field(default=0, ge=0)
    """Successful once this many measurements in a row are; 0 = not used."""
    provider: MetricProviderSpec

    @model_validator(mode="after")
    def _some_limit_applies(self) -> Metric:
        if self.failure_limit < 0 and self.consecutive_success_limit == 0:
            raise ValueError(
                "failureLimit -1 needs a consecutiveSuccessLimit above 0: "
                "otherwise nothing could ever decide this metric"
            )
        return self

    @property
    def planned_count(self) -> int | None:
        """Measurements to take: ``count``; 1 without an interval; ``None`` = until stopped
        (``count: 0`` is Argo's "until the rollout ends")."""
        if self.count:
            return self.count
        return 1 if self.interval is None and self.count is None else None


class AnalysisTemplateRef(Model):
    template_name: Name
    cluster_scope: bool = False
    """Refer to a ``ClusterAnalysisTemplate`` rather than an ``AnalysisTemplate``."""


class AnalysisTemplate(Model):
    """An ``AnalysisTemplate`` (or ``ClusterAnalysisTemplate``) document's name and spec."""

    name: Name
    args: list[Argument] = Field(default_factory=list)
    metrics: list[Metric] = Field(default_factory=list)
    templates: list[AnalysisTemplateRef] = Field(default_factory=list)
    """Other templates whose metrics and args this one includes (Argo: templates in templates)."""
    dry_run: list[MetricSelector] = Field(default_factory=list)
    measurement_retention: list[RetentionRule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _has_metrics_and_unique_names(self) -> AnalysisTemplate:
        if not self.metrics and not self.templates:
            raise ValueError("a template needs metrics or templates (to include)")
        names = [m.name for m in self.metrics]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"metric names must be unique, repeated: {', '.join(dupes)}")
        args = [a.name for a in self.args]
        repeated = sorted({a for a in args if args.count(a) > 1})
        if repeated:
            raise ValueError(f"arg names must be unique, repeated: {', '.join(repeated)}")
        return self


class StepAnalysis(Model):
    """A rollout's reference to templates: ``analysis: {templates: [...], args: [...]}``."""

    templates: list[AnalysisTemplateRef] = Field(min_length=1)
    args: list[Argument] = Field(default_factory=list)
    dry_run: list[MetricSelector] = Field(default_factory=list)
    measurement_retention: list[RetentionRule] = Field(default_factory=list)
    analysis_run_metadata: Annotated[
        None,
        refuse(
            "labels and annotations of an AnalysisRun object; deployflow's AnalysisRuns "
            "live in the workflow's status, not in Kubernetes"
        ),
        NOT_SERIALISED,
    ] = None


class BackgroundAnalysis(StepAnalysis):
    starting_step: int = Field(default=0, ge=0)
