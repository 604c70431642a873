"""The vocabulary every spec kind shares: names, versions, metadata, conditions, and how a
spec file becomes documents and a bad one becomes ``SpecError``.

``Rollout`` (``workflows/rollouts/spec.py``), ``Pipeline``, ``Runbook`` and
``ServiceMonitor`` are built from these; each ``SpecError`` message starts with the path of
the offending field, in the spec's own spelling.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

import yaml
from pydantic import AfterValidator, Field, ValidationError

from activities import errors
from activities.model import Model
from workflows.core.conditions import ConditionError, compile_condition

NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
Name = Annotated[str, Field(pattern=NAME_PATTERN, max_length=63)]
Version = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[\w.+-]+$")]
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
# pydantic's names for the validator a problem came from (``function-after[...]``).
_VALIDATOR_TAG = re.compile(r"function-")


def _check_condition(value: str) -> str:
    if "{{" in value:
        return value  # compiled once its placeholders are filled in (workflows/analysis/plan.py)
    try:
        compile_condition(value)
    except ConditionError as exc:
        raise ValueError(str(exc)) from None
    return value


Condition = Annotated[str, AfterValidator(_check_condition)]


class Metadata(Model):
    name: Name
    labels: dict[str, str] = Field(default_factory=dict)


class SpecError(ValueError):
    """An invalid spec; ``problems`` are ``path: message`` lines."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: invalid spec\n" + "\n".join(f"  {p}" for p in problems))


def refuse_problems(what: str, problems: list[str]) -> None:
    """Fail the run (InvalidSpec, not retried) when its ``what`` has ``problems``: the
    Temporal UI and the API can start a workflow with any input, so each checks its own."""
    if problems:
        raise errors.failure(errors.INVALID_SPEC, f"invalid {what}:\n" + "\n".join(problems))


def validation_problems(error: ValidationError, prefix: str = "") -> list[str]:
    """``path: message`` lines from a pydantic error, paths in the spec's own spelling.

    A key that is not a plain name is quoted (``metadata.labels["app.kubernetes.io/name"]``),
    so a path reads unambiguously whatever keys a file holds.
    """
    problems = []
    for item in error.errors():
        path = prefix
        for part in item["loc"]:
            if isinstance(part, int):
                path += f"[{part}]"
            elif part == "[key]":
                path += " (key)"
            elif _VALIDATOR_TAG.match(part):
                continue
            elif _PLAIN_KEY.fullmatch(part):
                path += f".{part}" if path else part
            else:
                path += f"[{json.dumps(part, ensure_ascii=False)}]"
        message = item["msg"].removeprefix("Value error, ")
        problems.append(f"{path or '(top level)'}: {message}")
    return problems


def yaml_documents(text: str, source: str) -> list[Any]:
    """The YAML documents in a spec file's text; ``SpecError`` ``(yaml): ...`` if unreadable."""
    try:
        return list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        raise SpecError(source, [f"(yaml): {exc}"]) from None
    except RecursionError:
        raise SpecError(source, ["(yaml): nested too deeply"]) from None
    except (ValueError, AttributeError) as exc:
        # PyYAML's constructors leak these for values they cannot build: a 2026-13-01
        # date, `!!int x`, an int of over 4,300 digits, `!!timestamp x`.
        raise SpecError(source, [f"(yaml): a value cannot be read: {exc}"]) from None
