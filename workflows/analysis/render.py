"""Filling in an analysis metric's placeholders, and what lint says when that goes wrong:
unknown placeholders (with the spec path of the string that holds them), secrets in
conditions, credentials written into the spec, a provider spec that is invalid once filled
in, a condition that does not compile.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError

from activities.metrics.activities import MetricProviderSpec
from activities.metrics.prometheus_spec import Connection
from activities.metrics.web import WebProviderSpec
from workflows.analysis.spec import Metric
from workflows.core.conditions import ConditionError, compile_condition

BUILTINS = ("service", "environment", "version", "stableVersion")
PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
_CREDENTIAL_HEADERS = {"authorization", "proxy-authorization", "x-api-key"}


def render_metric(
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
        if not any(mentions(value, f"args.{n}") for n in secrets):
            problems.append(
                f"{prefix}.{at}: must come from a secret arg "
                "({{args.NAME}} with valueFrom.secretKeyRef): a value written here would be "
                "stored in the workflow history"
            )


def _placeholders_at(value: Any, path: str) -> list[tuple[str, str]]:
    """``(spec path, placeholder)`` for every placeholder in a JSON-shaped ``value``."""
    if isinstance(value, str):
        return [(path, name) for name in PLACEHOLDER.findall(value)]
    if isinstance(value, list):
        return [f for i, v in enumerate(value) for f in _placeholders_at(v, f"{path}[{i}]")]
    if isinstance(value, dict):
        return [f for k, v in value.items() for f in _placeholders_at(v, f"{path}.{k}")]
    return []


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


def mentions(value: Any, name: str) -> bool:
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
