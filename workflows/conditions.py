"""Analysis conditions in CEL over ``result`` — never Python ``eval``.

``result`` is bound the way Argo Rollouts binds it for Prometheus: a query that returns
one series gives a number (``result < 0.01``); several series give a list
(``result.all(r, r < 0.01)``). Argo's habit of writing ``result[0]`` for a one-series
vector keeps working: when the scalar binding has no matching overload, the expression is
evaluated again with ``result`` as a one-element list.
"""

from __future__ import annotations

import re
from functools import lru_cache

import cel

ALLOWED_VARIABLES = frozenset({"result"})
# Names bound by CEL's comprehension macros (`result.all(r, r < 1)`) are not free variables.
_MACRO_BINDING = re.compile(r"\.(?:all|exists|exists_one|map|filter)\(\s*([A-Za-z_]\w*)\s*,")


class ConditionError(ValueError):
    """The condition does not compile, names unknown variables, or is not a boolean."""


@lru_cache(maxsize=256)
def compile_condition(expression: str) -> cel.Program:
    """Compile ``expression`` once; raise ``ConditionError`` with CEL's message if invalid."""
    try:
        program = cel.compile(expression)
    except (ValueError, RuntimeError) as exc:
        raise ConditionError(str(exc).splitlines()[0]) from None
    bound = set(_MACRO_BINDING.findall(expression))
    unknown = set(program.variables()) - ALLOWED_VARIABLES - bound
    if unknown:
        raise ConditionError(
            f"unknown variable(s) {', '.join(sorted(unknown))}: conditions may only use 'result'"
        )
    return program


def evaluate_condition(expression: str, values: list[float]) -> bool:
    """Evaluate ``expression`` against a measurement's values; ``ConditionError`` on misuse."""
    program = compile_condition(expression)
    bindings: list[object] = [values[0], values] if len(values) == 1 else [values]
    error: Exception | None = None
    for result in bindings:
        try:
            outcome = program.execute({"result": result})
        except Exception as exc:  # CEL raises TypeError, IndexError, RuntimeError, ...
            error = exc
            continue
        if not isinstance(outcome, bool):
            raise ConditionError(f"{expression!r} must be true or false, got {outcome!r}")
        return outcome
    raise ConditionError(f"{expression!r} cannot be evaluated on {values}: {error}")
