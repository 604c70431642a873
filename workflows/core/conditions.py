"""Analysis conditions in CEL over ``result`` — never Python ``eval``.

``result`` is bound the way Argo Rollouts binds it for Prometheus: a query that returns
one series gives a number (``result < 0.01``); several series give a list
(``result.all(r, r < 0.01)``). Argo's habit of writing ``result[0]`` for a one-series
vector keeps working: when the scalar binding has no matching overload, the expression is
evaluated again with ``result`` as a one-element list. A web metric's ``result`` is the
JSON value it found (numbers are doubles, as Go's JSON decoding makes them).

Conditions written for Argo in expr-lang (``all(result, # < 1)``, ``len(result) > 0``) are
translated to CEL first (``workflows/core/expr_conditions.py``); Argo's helper functions
(``isNaN``, ``isInf``, ``isNil``, ``default``, ``asInt``, ``asFloat``) and expr's
``abs``/``ceil``/``floor``/``round``/``max``/``min``/``sum``/``mean``/``median``/
``first``/``last`` are CEL functions here.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import cel

from workflows.core.expr_conditions import NotExpr, to_cel

ALLOWED_VARIABLES = frozenset({"result"})
# Names bound by CEL's comprehension macros (`result.all(r, r < 1)`) are not free variables.
_MACRO_BINDING = re.compile(r"\.(?:all|exists|exists_one|map|filter)\(\s*([A-Za-z_]\w*)\s*,")
_CEL_BUILTINS = frozenset(
    {"size", "has", "int", "uint", "double", "string", "bytes", "bool", "dyn", "type"}
    | {"timestamp", "duration", "contains", "startsWith", "endsWith", "matches"}
)
_FUNCTION = re.compile(r"[A-Za-z_][\w.]*")


class ConditionError(ValueError):
    """The condition does not compile, names unknown variables, or is not a boolean."""


def _number(value: Any, function: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{function}() wants a number, got {_cel_type(value)}")
    return float(value)


def _numbers(args: tuple[Any, ...], function: str) -> list[float]:
    values = args[0] if len(args) == 1 and isinstance(args[0], list) else list(args)
    if not values:
        raise ValueError(f"{function}() of no values")
    return [_number(v, function) for v in values]


def _as_int(value: Any) -> int:
    if isinstance(value, str):
        return int(value.strip())
    return int(_number(value, "asInt"))


def _as_float(value: Any) -> float:
    if isinstance(value, str):
        return float(value.strip())
    return _number(value, "asFloat")


def _element(values: Any, index: int, function: str) -> Any:
    if not isinstance(values, list) or not values:
        raise ValueError(f"{function}() wants a non-empty list")
    return values[index]


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "isNaN": lambda x: math.isnan(_number(x, "isNaN")),
    "isInf": lambda x: math.isinf(_number(x, "isInf")),
    # No data (an empty vector) counts as nil, as a Datadog query's nil does in Argo.
    "isNil": lambda x: x is None or x == [],
    "default": lambda x, fallback: fallback if x is None or x == [] else x,
    "asInt": _as_int,
    "asFloat": _as_float,
    "abs": lambda x: abs(_number(x, "abs")),
    "ceil": lambda x: float(math.ceil(_number(x, "ceil"))),
    "floor": lambda x: float(math.floor(_number(x, "floor"))),
    "round": lambda x: float(math.floor(abs(_number(x, "round")) + 0.5) * math.copysign(1, x)),
    "max": lambda *a: max(_numbers(a, "max")),
    "min": lambda *a: min(_numbers(a, "min")),
    "sum": lambda x: math.fsum(_numbers((x,), "sum")),
    "mean": lambda x: statistics.fmean(_numbers((x,), "mean")),
    "median": lambda x: float(statistics.median(_numbers((x,), "median"))),
    "first": lambda x: _element(x, 0, "first"),
    "last": lambda x: _element(x, -1, "last"),
}


@lru_cache(maxsize=256)
def compile_condition(expression: str) -> cel.Program:
    """Compile ``expression`` (CEL, or Argo's expr translated to CEL) once; raise
    ``ConditionError`` saying why it cannot be read."""
    try:
        text = to_cel(expression)
        untranslatable = None
    except NotExpr as exc:
        text, untranslatable = expression, str(exc)
    try:
        program = cel.compile(text)
    except (ValueError, RuntimeError) as exc:
        why = str(exc).splitlines()[0].removeprefix(f"Failed to parse expression '{text}': ")
        why = why.removeprefix("ERROR: <input>:")
        if untranslatable:
            why += f"; as Argo's expr: {untranslatable}"
        raise ConditionError(f"cannot be parsed as CEL or as Argo's expr: {why}") from None
    bound = set(_MACRO_BINDING.findall(text))
    unknown = set(program.variables()) - ALLOWED_VARIABLES - bound
    if unknown:
        raise ConditionError(
            f"unknown variable(s) {', '.join(sorted(unknown))}: conditions may only use 'result'"
        )
    named = {f for f in program.functions() if _FUNCTION.fullmatch(f)}
    strangers = named - _CEL_BUILTINS - FUNCTIONS.keys()
    if strangers:
        raise ConditionError(
            f"unknown function(s) {', '.join(sorted(strangers))}: besides CEL's own, "
            f"conditions may use {', '.join(sorted(FUNCTIONS))}"
        )
    return program


def evaluate_condition(expression: str, values: Any) -> bool:
    """Evaluate ``expression`` against a measurement (its values, or a web metric's JSON);
    ``ConditionError`` on misuse."""
    program = compile_condition(expression)
    value = _doubles(values)
    single = isinstance(value, list) and len(value) == 1 and isinstance(value[0], float)
    bindings: list[Any] = [value[0], value] if single else [value]
    error: Exception | None = None
    for result in bindings:
        try:
            outcome = program.execute(cel.Context({"result": result}, FUNCTIONS))
        except Exception as exc:  # CEL raises TypeError, IndexError, RuntimeError, ...
            error = exc
            continue
        if not isinstance(outcome, bool):
            raise ConditionError(f"{expression!r} must be true or false, got {outcome!r}")
        return outcome
    raise ConditionError(f"{expression!r} cannot be evaluated on {_show(values)}: {error}")


def _doubles(value: Any) -> Any:
    """JSON with every number a double: CEL does not compare or add ints and doubles."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, list):
        return [_doubles(v) for v in value]
    if isinstance(value, dict):
        return {k: _doubles(v) for k, v in value.items()}
    return value


def _cel_type(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "bool", str: "string", list: "list", dict: "map"}.get(type(value), "value")


def _show(values: Any) -> str:
    text = repr(values)
    return text if len(text) <= 200 else text[:200] + "..."
