"""Label and field selectors as the API server reads ``?labelSelector=`` and ``?fieldSelector=``.

Label selector grammar (https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/):
``key``, ``!key``, ``key=v``, ``key==v``, ``key!=v``, ``key in (a,b)``, ``key notin (a,b)``,
comma-separated and all required. ``!=`` and ``notin`` also match objects without the key.
Field selectors support ``=``, ``==`` and ``!=`` on the fields a resource lists.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

Selector = Callable[[Mapping[str, Any]], bool]

_SET_RE = re.compile(r"^\s*(!?)\s*([A-Za-z0-9./_-]+)\s*(?:\s+(notin|in)\s*\(([^)]*)\))?\s*$")
_OP_RE = re.compile(r"^\s*([A-Za-z0-9./_-]+)\s*(==|!=|=)\s*([A-Za-z0-9._-]*)\s*$")
DEFAULT_FIELDS = ("metadata.name", "metadata.namespace")


class SelectorError(ValueError):
    """A selector the API server would refuse (400 BadRequest)."""


def _split(text: str) -> list[str]:
    """Split on commas outside parentheses."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p for p in parts if p.strip()]


def _label_requirement(text: str) -> Callable[[Mapping[str, str]], bool]:
    if match := _OP_RE.match(text):
        key, op, value = match.groups()
        if op == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: labels.get(key) == value
    if match := _SET_RE.match(text):
        negated, key, op, values = match.groups()
        if op is None:
            return (lambda labels: key not in labels) if negated else (lambda labels: key in labels)
        if negated:
            raise SelectorError(f"unable to parse requirement: {text.strip()!r}")
        allowed = {v.strip() for v in values.split(",") if v.strip()}
        if op == "in":
            return lambda labels: labels.get(key) in allowed
        return lambda labels: labels.get(key) not in allowed
    raise SelectorError(f"unable to parse requirement: {text.strip()!r}")


def label_selector(text: str | None) -> Selector:
    """A predicate over objects for ``?labelSelector=text`` (everything when empty)."""
    requirements = [_label_requirement(part) for part in _split(text or "")]

    def matches(obj: Mapping[str, Any]) -> bool:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return all(requirement(labels) for requirement in requirements)

    return matches


def field_selector(text: str | None, fields: tuple[str, ...] = DEFAULT_FIELDS) -> Selector:
    """A predicate over objects for ``?fieldSelector=text``; unknown fields are refused."""
    checks: list[tuple[str, bool, str]] = []
    for part in _split(text or ""):
        match = _OP_RE.match(part)
        if not match:
            raise SelectorError(f"invalid field selector: {part.strip()!r}")
        field, op, value = match.groups()
        if field not in fields:
            raise SelectorError(f'field label not supported: "{field}"')
        checks.append((field, op != "!=", value))

    def matches(obj: Mapping[str, Any]) -> bool:
        return all((_field(obj, field) == value) is equal for field, equal, value in checks)

    return matches


def _field(obj: Mapping[str, Any], dotted: str) -> str:
    value: Any = obj
    for name in dotted.split("."):
        value = value.get(name) if isinstance(value, Mapping) else None
    return "" if value is None else str(value)


def selector_string(match_labels: Mapping[str, str]) -> str:
    """``matchLabels`` as the string a Scale's ``status.selector`` carries."""
    return ",".join(f"{k}={v}" for k, v in sorted(match_labels.items()))
