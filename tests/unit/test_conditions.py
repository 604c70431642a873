import pytest

from workflows.conditions import ConditionError, compile_condition, evaluate_condition


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
    ],
)
def test_invalid_conditions_are_rejected_at_compile_time(expression, message):
    with pytest.raises(ConditionError, match=message):
        compile_condition(expression)


def test_non_boolean_condition_is_an_error():
    with pytest.raises(ConditionError, match="must be true or false"):
        evaluate_condition("result + 1.0", [1.0])


@pytest.mark.parametrize("expression", ["result < 'a'", "__import__('os')", "result[3] < 1.0"])
def test_evaluation_failure_is_a_condition_error_not_a_crash(expression):
    with pytest.raises(ConditionError, match="cannot be evaluated"):
        evaluate_condition(expression, [1.0])
