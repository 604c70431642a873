import math

import pytest

from workflows.core.conditions import ConditionError, compile_condition, evaluate_condition
from workflows.core.expr_conditions import to_cel


@pytest.mark.parametrize(
    ("expression", "values", "expected"),
    [
        ("result < 0.01", [0.005], True),
        ("result < 0.01", [0.5], False),
        ("result < 1", [0.5], True),  # int literal against a double result
        ("result >= 0.95 && result <= 1.0", [0.97], True),
        ("result[0] >= 0.95", [0.97], True),  # Argo's habit for one-series vectors
        ("result.all(r, r < 0.1)", [0.01, 0.05], True),
        ("result.all(r, r < 0.1)", [0.01, 0.5], False),
        ("result.exists(r, r > 0.1)", [0.01, 0.5], True),
        ("size(result) == 2", [1.0, 2.0], True),
    ],
)
def test_conditions_are_cel_over_result(expression, values, expected):
    assert evaluate_condition(expression, values) is expected


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("result <<< 1", "Syntax error"),
        ("errors < 1", r"unknown variable\(s\) errors"),
        ("__import__('os')", r"unknown function\(s\) __import__"),
    ],
)
def test_invalid_conditions_are_rejected_at_compile_time(expression, message):
    with pytest.raises(ConditionError, match=message):
        compile_condition(expression)


def test_non_boolean_condition_is_an_error():
    with pytest.raises(ConditionError, match="must be true or false"):
        evaluate_condition("result + 1.0", [1.0])


@pytest.mark.parametrize("expression", ["result < 'a'", "result[3] < 1.0", "isNaN('x')"])
def test_evaluation_failure_is_a_condition_error_not_a_crash(expression):
    with pytest.raises(ConditionError, match="cannot be evaluated"):
        evaluate_condition(expression, [1.0])


@pytest.mark.parametrize(
    ("expr", "cel"),
    [
        ("all(result, # < 1000)", "result.all(it0, it0 < 1000)"),
        ("all(result, {# < 0.5})", "result.all(it0, it0 < 0.5)"),
        ("any(result, # > 1)", "result.exists(it0, it0 > 1)"),
        ("none(result, # > 1)", "!result.exists(it0, it0 > 1)"),
        ("one(result, # > 1)", "result.exists_one(it0, it0 > 1)"),
        ("count(result, # > 0.5) >= 2", "size(result.filter(it0, it0 > 0.5)) >= 2"),
        ("any(result, all(#.xs, # > 1))", "result.exists(it0, it0.xs.all(it1, it1 > 1))"),
        ("all(result, .ok)", "result.all(it0, it0.ok)"),
        ("len(result) > 0 && result[0] >= 0.95", "size(result) > 0 && result[0] >= 0.95"),
        ("not isNaN(result) and result < 1", "!isNaN(result) && result < 1"),
        ("!(result < 1) || result == nil", "!(result < 1) || result == null"),
        ("result * 100 > 5", "result * 100.0 > 5"),
        ("(result[0] + result[1]) / 2 < 0.5", "(result[0] + result[1]) / 2.0 < 0.5"),
        ("result[len(result) - 1] < 3", "result[size(result) - 1] < 3"),
        # Integers stay CEL's: an int division by zero is an error, not a double's infinity.
        ("result.size() / 0 == 1", "result.size() / 0 == 1"),
        ("len(result) / 2 > 1", "size(result) / 2 > 1"),
        (
            'result matches "^ok" or result contains "x"',
            'result.matches("^ok") || result.contains("x")',
        ),
        ("result == 'true'", 'result == "true"'),
        ("float(result) > 1", "double(result) > 1"),
        # CEL passes through: what Python reads is written back the same, the rest untouched.
        ("result.all(r, r < 0.1)", "result.all(r, r < 0.1)"),
        ("result > 1.0 ? true : false", "result > 1.0 ? true : false"),
    ],
)
def test_argo_expr_conditions_are_translated_to_cel(expr, cel):
    assert to_cel(expr) == cel


@pytest.mark.parametrize(
    ("expression", "result", "expected"),
    [
        ("isNaN(result) || result >= 0.95", [math.nan], True),
        ("isInf(result)", [math.inf], True),
        ("len(result) == 0 || result[0] >= 0.95", [], True),
        ("len(result) > 0 && result[0] >= 0.95", [], False),
        ("default(result, 0) < 0.05", None, True),
        ("isNil(result)", None, True),
        ("asInt(result) > 5", "7", True),
        ("asFloat(result) >= 0.9", "0.95", True),
        ("result.ok && result.successPercent >= 0.90", {"ok": True, "successPercent": 0.95}, True),
        ("result.count == 3", {"count": 3}, True),  # JSON ints compare as doubles
        ("result * 100 > 5", [0.2], True),
        ("mean(result) <= 2 && max(result) == 3 && first(result) == 1", [1.0, 2.0, 3.0], True),
    ],
)
def test_argo_helper_functions(expression, result, expected):
    assert evaluate_condition(expression, result) is expected
