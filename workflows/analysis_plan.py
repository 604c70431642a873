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
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from activities.metrics.activities import MetricProviderSpec
from activities.metrics.prometheus_spec import Connection
from activities.metrics.secrets import SecretKeyRef
from activities.metrics.web import WebProviderSpec
from workflows.analysis_spec import (
    DEFAULT_RETENTION,
    AnalysisTemplate,
    Argument,
    Metric,
    MetricSelector,
    RetentionRule,
    StepAnalysis,
)
from workflows.conditions import ConditionError, compile_condition

if TYPE_CHECKING:
    from workflows.spec import Rollout

BUILTINS = ("service", "environment", "version", "stableVersion")
PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
_LABEL = re.compile(r"""^metadata\.labels(?:\.([\w.-]+)|\[\s*['"]([^'"]+)['"]\s*\])$""")
_FIELDS = {
    "metadata.name": lambda r: r.metadata.name,
    "spec.service": lambda r: r.spec.service,
    "spec.environment": lambda r: r.spec.environment,
    "spec.version": lambda r: r.spec.version,
    "spec.stableVersion": lambda r: r.spec.stable_version,
}
_CREDENTIAL_HEADERS = {"authorization", "proxy-authorization", "x-api-key"}


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
            rendered = _render_metric(metric, known, set(secrets), where, problems)
            if rendered is None:
                continue
            used = {n for n in secrets if _mentions(metric.provider.model_dump(), f"args.{n}")}
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


def _render_metric(
    metric: Metric, known: dict[str, str], secrets: set[str], where: str, problems: list[str]
) -> Metric | None:
    """``metric`` with placeholders filled in, or ``None`` (problems appended)."""
    provider = metric.provider.model_dump(mode="json")
    allowed = {*known, *(f"args.{n}" for n in secrets)}
    if metric.provider.judge is not None:
        allowed.add("scope")
    found = len(problems)
    for at, name in _placeholders_at(provider, f"{where}.provider"):
        if name not in allowed:
            problems.append(f"{at}: unknown placeholder {{{{{name}}}}}{_hint(name)}")
    conditions: dict[str, str | None] = {}
    for field_name in ("success_condition", "failure_condition"):
        text: str | None = getattr(metric, field_name)
        if text is None:
            conditions[field_name] = None
            continue
        for name in sorted(_placeholders(text) - set(known)):
            secret = name.removeprefix("args.") in secrets
            why = "is a secret, and conditions run in the workflow" if secret else "is unknown"
            problems.append(f"{where}.{_camel(field_name)}: placeholder {{{{{name}}}}} {why}")
        conditions[field_name] = _fill(text, known)
    _credentials(metric.provider, secrets, where, problems)
    if len(problems) > found:
        return None
    try:
        rendered = MetricProviderSpec.model_validate(_fill(provider, known))
    except ValidationError as exc:
        for error in exc.errors():
            at = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"])
            message = error["msg"].removeprefix("Value error, ")
            problems.append(f"{where}.provider{at}: {message} (once placeholders are filled in)")
        return None
    for field_name, text in conditions.items():
        if text is not None:
            try:
                compile_condition(text)
            except ConditionError as exc:
                problems.append(f"{where}.{_camel(field_name)}: {exc}")
                return None
    return metric.model_copy(update={"provider": rendered, **conditions})


def _credentials(
    provider: MetricProviderSpec, secrets: set[str], where: str, problems: list[str]
) -> None:
    """Passwords, tokens and credential headers must come from secret args: anything in the
    spec is stored in the workflow's history."""
    spec: Connection | WebProviderSpec | None = provider.prometheus or provider.web
    prefix = f"{where}.provider.{provider.kind}"
    if provider.judge is not None:
        spec, prefix = provider.judge.prometheus, f"{prefix}.prometheus"
    if spec is None:
        return
    checks: list[tuple[str, str]] = [
        (f"headers[{i}].value", h.value)
        for i, h in enumerate(spec.headers)
        if h.key.lower() in _CREDENTIAL_HEADERS
    ]
    auth = spec.authentication if isinstance(spec, Connection) else None
    if auth is not None and auth.basic_auth is not None:
        checks.append(("authentication.basicAuth.password", auth.basic_auth.password))
    if auth is not None and auth.bearer is not None:
        checks.append(("authentication.bearer.token", auth.bearer.token))
    for at, value in checks:
        if not any(_mentions(value, f"args.{n}") for n in secrets):
            problems.append(
                f"{prefix}.{at}: must come from a secret arg "
                "({{args.NAME}} with valueFrom.secretKeyRef): a value written here would be "
                "stored in the workflow history"
            )


def _retention(name: str, rules: list[RetentionRule]) -> int:
    limit = next((r.limit for r in reversed(rules) if re.fullmatch(r.metric_name, name)), 0)
    return limit or DEFAULT_RETENTION


def _placeholders_at(value: Any, path: str) -> list[tuple[str, str]]:
    """``(spec path, placeholder)`` for every placeholder in a JSON-shaped ``value``."""
    if isinstance(value, str):
        return [(path, name) for name in PLACEHOLDER.findall(value)]
    if isinstance(value, list):
        return [f for i, v in enumerate(value) for f in _placeholders_at(v, f"{path}[{i}]")]
    if isinstance(value, dict):
        return [f for k, v in value.items() for f in _placeholders_at(v, f"{path}.{k}")]
    return []


def _template_path(rollout: Rollout, name: str) -> str:
    for field_name, templates in (
        ("analysisTemplates", rollout.spec.analysis_templates),
        ("clusterAnalysisTemplates", rollout.spec.cluster_analysis_templates),
    ):
        for index, template in enumerate(templates):
            if template.name == name:
                return f"spec.{field_name}[{index}]"
    raise AssertionError(f"template {name!r} was found a moment ago")  # unreachable


def _placeholders(value: Any) -> set[str]:
    if isinstance(value, str):
        return set(PLACEHOLDER.findall(value))
    if isinstance(value, list):
        return {p for v in value for p in _placeholders(v)}
    if isinstance(value, dict):
        return {p for v in value.values() for p in _placeholders(v)}
    return set()


def _fill(value: Any, known: dict[str, str]) -> Any:
    """``value`` (JSON-shaped) with the ``known`` placeholders substituted, others kept."""
    if isinstance(value, str):
        return PLACEHOLDER.sub(lambda m: known.get(m.group(1), m.group(0)), value)
    if isinstance(value, list):
        return [_fill(v, known) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, known) for k, v in value.items()}
    return value


def _mentions(value: Any, name: str) -> bool:
    return name in _placeholders(value)


def _hint(name: str) -> str:
    if name == "stableVersion":
        return " (set spec.stableVersion: the version the stable servers run)"
    if name.startswith("args."):
        return f" (declare arg {name.removeprefix('args.')!r} in the template's args)"
    return f" (known: {', '.join('{{' + b + '}}' for b in BUILTINS)}, {{{{args.NAME}}}})"


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)
