"""Which metrics an AnalysisRun measures, with every placeholder filled in — and, for lint,
everything that can be wrong about that.

A rollout's reference (``analysis: {templates, args, dryRun, measurementRetention}``)
names templates; templates may include others. Their metrics and args are merged as
Argo merges them (an arg declared twice with different defaults is an error), the
reference's args fill in or override values, and then ``{{args.NAME}}``, ``{{service}}``,
``{{environment}}``, ``{{version}}`` and ``{{stableVersion}}`` are substituted in the
provider spec and the conditions. A secret arg stays a placeholder: the worker fills it in
(``activities/metrics/secrets.py``); it may not appear in a condition.

Pure and deterministic: the workflow calls ``plan`` when a run starts, lint calls
``plan_problems``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from activities.metrics.secrets import SecretKeyRef
from workflows.analysis.render import mentions, render_metric
from workflows.analysis.spec import (
    DEFAULT_RETENTION,
    AnalysisTemplate,
    Argument,
    Metric,
    MetricSelector,
    RetentionRule,
    StepAnalysis,
)

if TYPE_CHECKING:
    from workflows.rollouts.spec import Rollout

_LABEL = re.compile(r"""^metadata\.labels(?:\.([\w.-]+)|\[\s*['"]([^'"]+)['"]\s*\])$""")
_FIELDS = {
    "metadata.name": lambda r: r.metadata.name,
    "spec.service": lambda r: r.spec.service,
    "spec.environment": lambda r: r.spec.environment,
    "spec.version": lambda r: r.spec.version,
    "spec.stableVersion": lambda r: r.spec.stable_version,
}


class PlanError(ValueError):
    """The reference cannot be planned; ``problems`` are ``path: message`` lines."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass
class PlannedMetric:
    """A metric ready to measure: placeholders filled in, secrets as references."""

    metric: Metric
    secrets: dict[str, SecretKeyRef] = field(default_factory=dict)
    dry_run: bool = False
    retention: int = DEFAULT_RETENTION


@dataclass
class _Merged:
    templates: list[AnalysisTemplate]
    args: dict[str, Argument]
    problems: list[str]


def plan(
    rollout: Rollout,
    templates: list[str],
    args: list[Argument] | None = None,
    dry_run: list[MetricSelector] | None = None,
    retention: list[RetentionRule] | None = None,
    path: str = "analysis",
) -> list[PlannedMetric]:
    """The run's metrics in template order; ``PlanError`` if anything is unresolvable."""
    merged = _merge(rollout, templates, path)
    problems = merged.problems
    values, secrets = _arg_values(rollout, merged.args, args or [], path, problems)
    builtins = {
        "service": rollout.spec.service,
        "environment": rollout.spec.environment,
        "version": rollout.spec.version,
    }
    if rollout.spec.stable_version is not None:
        builtins["stableVersion"] = rollout.spec.stable_version
    known = {**builtins, **{f"args.{k}": v for k, v in values.items()}}
    selectors = [*(s for t in merged.templates for s in t.dry_run), *(dry_run or [])]
    rules = [*(r for t in merged.templates for r in t.measurement_retention), *(retention or [])]
    planned: list[PlannedMetric] = []
    for template in merged.templates:
        for index, metric in enumerate(template.metrics):
            where = f"{_template_path(rollout, template.name)}.metrics[{index}]"
            rendered = render_metric(metric, known, set(secrets), where, problems)
            if rendered is None:
                continue
            used = {n for n in secrets if mentions(metric.provider.model_dump(), f"args.{n}")}
            planned.append(
                PlannedMetric(
                    metric=rendered,
                    secrets={n: secrets[n] for n in sorted(used)},
                    dry_run=any(re.fullmatch(s.metric_name, metric.name) for s in selectors),
                    retention=_retention(metric.name, rules),
                )
            )
    if problems:
        raise PlanError(problems)
    return planned


def template_problems(rollout: Rollout) -> list[str]:
    """Template names must be unique, across AnalysisTemplates and ClusterAnalysisTemplates."""
    names = [
        *(t.name for t in rollout.spec.analysis_templates),
        *(t.name for t in rollout.spec.cluster_analysis_templates),
    ]
    return [
        f"spec.analysisTemplates: template {name!r} is defined twice"
        for name in sorted({n for n in names if names.count(n) > 1})
    ]


def reference_problems(
    rollout: Rollout, path: str, analysis: StepAnalysis, blocking: bool
) -> list[str]:
    """Why ``analysis`` (at ``path`` in the spec) cannot run, or ``[]``. A ``blocking`` one
    (a step's) must finish: every metric needs a count or no interval."""
    spec = rollout.spec
    scoped = {
        False: {t.name for t in spec.analysis_templates},
        True: {t.name for t in spec.cluster_analysis_templates},
    }
    problems = []
    for index, ref in enumerate(analysis.templates):
        name, cluster = ref.template_name, ref.cluster_scope
        if name in scoped[cluster]:
            continue
        kind = "ClusterAnalysisTemplate" if cluster else "analysisTemplate"
        if name in scoped[not cluster]:
            other = "an AnalysisTemplate" if cluster else "a ClusterAnalysisTemplate"
            why = f"{name!r} is {other}: set clusterScope: {str(not cluster).lower()}"
        else:
            have = ", ".join(sorted(scoped[cluster])) or "none defined"
            why = f"no {kind} named {name!r} (have: {have})"
        problems.append(f"{path}.templates[{index}].templateName: {why}")
    if problems:
        return problems
    try:
        planned = plan(
            rollout,
            [t.template_name for t in analysis.templates],
            analysis.args,
            analysis.dry_run,
            analysis.measurement_retention,
            path,
        )
    except PlanError as exc:
        return exc.problems
    return [
        f"{path}: metric {p.metric.name!r} has an interval but no count, "
        "so this step would never finish (set count)"
        for p in planned
        if blocking and p.metric.planned_count is None
    ]


def _merge(rollout: Rollout, names: list[str], path: str) -> _Merged:
    """The templates ``names`` include (each once, depth first) and their merged args."""
    seen: list[AnalysisTemplate] = []
    problems: list[str] = []

    def visit(name: str, chain: tuple[str, ...]) -> None:
        if name in chain:
            problems.append(f"{path}: templates include each other: {' -> '.join([*chain, name])}")
            return
        template = rollout.template(name)
        if template is None and chain:
            problems.append(
                f"{path}: template {chain[-1]!r} includes {name!r}, which is not defined"
            )
        if template is None or any(t.name == name for t in seen):
            return
        for ref in template.templates:
            visit(ref.template_name, (*chain, name))
        seen.append(template)

    for name in names:
        visit(name, ())
    metric_names = [m.name for t in seen for m in t.metrics]
    for repeated in sorted({n for n in metric_names if metric_names.count(n) > 1}):
        problems.append(f"{path}: metric {repeated!r} is defined by more than one template")
    args: dict[str, Argument] = {}
    for template in seen:
        for arg in template.args:
            before = args.get(arg.name)
            if before is not None and before != arg:
                problems.append(
                    f"{path}: arg {arg.name!r} is declared differently by two of the templates "
                    f"(template {template.name!r} among them)"
                )
            args.setdefault(arg.name, arg)
    return _Merged(seen, args, problems)


def _arg_values(
    rollout: Rollout,
    declared: dict[str, Argument],
    given: list[Argument],
    path: str,
    problems: list[str],
) -> tuple[dict[str, str], dict[str, SecretKeyRef]]:
    """Each declared arg's value (the reference's over the template's default), or its
    secret reference."""
    arguments = dict(declared)
    for index, arg in enumerate(given):
        if arg.name not in declared:
            have = ", ".join(sorted(declared)) or "none"
            problems.append(
                f"{path}.args[{index}].name: no template declares arg {arg.name!r} "
                f"(declared: {have})"
            )
            continue
        arguments[arg.name] = arg
    values: dict[str, str] = {}
    secrets: dict[str, SecretKeyRef] = {}
    reported = len(problems)
    for name, arg in arguments.items():
        source = arg.value_from
        if arg.value is not None:
            values[name] = arg.value
        elif source is None:
            problems.append(
                f"{path}.args: arg {name!r} needs a value (no template gives a default)"
            )
        elif source.secret_key_ref is not None:
            secrets[name] = source.secret_key_ref
        elif source.pod_template_hash_value is not None:
            stable = source.pod_template_hash_value == "Stable"
            value = rollout.spec.stable_version if stable else rollout.spec.version
            if value is None:
                problems.append(
                    f"{path}.args: arg {name!r} (podTemplateHashValue: Stable) needs "
                    "spec.stableVersion"
                )
            else:
                values[name] = value
        elif source.field_ref is not None:
            value = _field(rollout, source.field_ref.field_path)
            if value is None:
                problems.append(
                    f"{path}.args: arg {name!r}: fieldRef.fieldPath "
                    f"{source.field_ref.field_path!r} has no value in this rollout (known: "
                    f"{', '.join(_FIELDS)}, metadata.labels['NAME'])"
                )
            else:
                values[name] = value
        if name not in values and name not in secrets and len(problems) > reported:
            # Reported above; a stand-in keeps the rest of the check from tripping over it.
            values[name] = name
    return values, secrets


def _field(rollout: Rollout, field_path: str) -> str | None:
    read = _FIELDS.get(field_path.strip())
    if read is not None:
        value: str | None = read(rollout)
        return value
    label = _LABEL.match(field_path.strip())
    if label is not None:
        return rollout.metadata.labels.get(label.group(1) or label.group(2))
    return None


def _retention(name: str, rules: list[RetentionRule]) -> int:
    limit = next((r.limit for r in reversed(rules) if re.fullmatch(r.metric_name, name)), 0)
    return limit or DEFAULT_RETENTION


def _template_path(rollout: Rollout, name: str) -> str:
    for field_name, templates in (
        ("analysisTemplates", rollout.spec.analysis_templates),
        ("clusterAnalysisTemplates", rollout.spec.cluster_analysis_templates),
    ):
        for index, template in enumerate(templates):
            if template.name == name:
                return f"spec.{field_name}[{index}]"
    raise AssertionError(f"template {name!r} was found a moment ago")  # unreachable
