"""Argo AnalysisRun semantics: measurement classification, metric limits, worst phase."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from activities.metrics.activities import MetricProviderSpec
from workflows.analysis.run import (
    MEASUREMENT_RETENTION,
    AnalysisPhase,
    Measurement,
    MetricResult,
    classify,
    handles_special_values,
    record,
    run_phase,
)
from workflows.analysis.spec import Metric

P = AnalysisPhase
PROVIDER = MetricProviderSpec.model_validate(
    {"prometheus": {"address": "http://127.0.0.1:9090", "query": "q"}}
)
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def metric(**fields: Any) -> Metric:
    return Metric.model_validate({"name": "m", "provider": PROVIDER, **fields})


def measured(phase: AnalysisPhase) -> Measurement:
    return Measurement(phase=phase, started_at=NOW, finished_at=NOW, message=phase.value)


def replay(m: Metric, phases: list[AnalysisPhase]) -> MetricResult:
    result = MetricResult(name=m.name)
    for phase in phases:
        result = record(m, result, measured(phase))
    return result


@pytest.mark.parametrize(
    ("success", "failure", "value", "expected"),
    [
        ("result < 0.01", None, 0.001, P.SUCCESSFUL),
        ("result < 0.01", None, 0.5, P.FAILED),  # no failureCondition: not success = Failed
        (None, "result > 0.1", 0.5, P.FAILED),
        (None, "result > 0.1", 0.05, P.SUCCESSFUL),  # no successCondition: not failed = ok
        ("result < 0.01", "result > 0.1", 0.05, P.INCONCLUSIVE),
        ("result < 0.01", "result > 0.1", 0.001, P.SUCCESSFUL),
        ("result < 0.01", "result > 0.1", 0.5, P.FAILED),
        ("result < 0.5", "result > 0.1", 0.3, P.FAILED),  # both hold: failure wins
        (None, None, 123.0, P.SUCCESSFUL),
        ("result[5] < 1.0", None, 0.1, P.ERROR),  # a condition that cannot evaluate
    ],
)
def test_classify_follows_argo_evaluate_result(success, failure, value, expected):
    m = metric(successCondition=success, failureCondition=failure)
    assert classify(m, [value])[0] is expected


def test_failure_limit_allows_that_many_failures():
    m = metric(interval="1m", count=5, failureLimit=1)
    assert replay(m, [P.FAILED]).phase is P.RUNNING
    assert replay(m, [P.FAILED, P.SUCCESSFUL, P.FAILED]).phase is P.FAILED


def test_default_failure_limit_zero_fails_on_the_first_failure():
    m = metric(interval="1m", count=5)
    result = replay(m, [P.SUCCESSFUL, P.FAILED])
    assert result.phase is P.FAILED
    assert result.message is not None
    assert "exceed failureLimit 0" in result.message


def test_inconclusive_limit():
    m = metric(interval="1m", count=5, inconclusiveLimit=1)
    assert replay(m, [P.INCONCLUSIVE]).phase is P.RUNNING
    assert replay(m, [P.INCONCLUSIVE, P.INCONCLUSIVE]).phase is P.INCONCLUSIVE


def test_consecutive_error_limit_defaults_to_four_and_resets_on_a_measurement():
    m = metric(interval="1m", count=20)
    assert replay(m, [P.ERROR] * 4).phase is P.RUNNING
    assert replay(m, [P.ERROR] * 5).phase is P.ERROR
    reset = replay(m, [P.ERROR] * 4 + [P.SUCCESSFUL] + [P.ERROR] * 4)
    assert reset.phase is P.RUNNING
    assert (reset.error, reset.consecutive_error) == (8, 4)


def test_count_reached_without_crossing_limits_is_successful():
    m = metric(interval="1m", count=3, failureLimit=1)
    result = replay(m, [P.SUCCESSFUL, P.FAILED, P.SUCCESSFUL])
    assert result.phase is P.SUCCESSFUL
    assert (result.count, result.successful, result.failed) == (3, 2, 1)


def test_no_interval_means_a_single_measurement():
    assert replay(metric(), [P.SUCCESSFUL]).phase is P.SUCCESSFUL


def test_interval_without_count_runs_until_stopped():
    m = metric(interval="1m")
    assert replay(m, [P.SUCCESSFUL] * 50).phase is P.RUNNING


def test_measurements_are_retained_but_counts_stay_exact():
    m = metric(interval="1m")
    result = replay(m, [P.SUCCESSFUL] * (MEASUREMENT_RETENTION + 5))
    assert len(result.measurements) == MEASUREMENT_RETENTION
    assert result.count == MEASUREMENT_RETENTION + 5


@pytest.mark.parametrize(
    ("phases", "expected"),
    [
        ([], P.PENDING),
        ([P.SUCCESSFUL, P.SUCCESSFUL], P.SUCCESSFUL),
        ([P.SUCCESSFUL, P.RUNNING], P.RUNNING),
        ([P.RUNNING, P.PENDING], P.PENDING),
        ([P.PENDING, P.INCONCLUSIVE], P.INCONCLUSIVE),
        ([P.INCONCLUSIVE, P.ERROR], P.ERROR),
        ([P.ERROR, P.FAILED, P.SUCCESSFUL], P.FAILED),
    ],
)
def test_run_phase_is_the_worst_metric_phase(phases, expected):
    results = [MetricResult(name=f"m{i}", phase=p) for i, p in enumerate(phases)]
    assert run_phase(results) is expected


def test_consecutive_success_limit_succeeds_early_and_resets_on_anything_else():
    m = metric(interval="1m", count=10, failureLimit=3, consecutiveSuccessLimit=3)
    assert replay(m, [P.SUCCESSFUL] * 3).phase is P.SUCCESSFUL
    assert replay(m, [P.SUCCESSFUL, P.SUCCESSFUL, P.FAILED, P.SUCCESSFUL]).phase is P.RUNNING
    assert replay(m, [P.FAILED, P.SUCCESSFUL, P.SUCCESSFUL, P.SUCCESSFUL]).phase is P.SUCCESSFUL
    assert replay(m, [P.FAILED] * 4).phase is P.FAILED  # failureLimit still applies


def test_count_reached_without_enough_successes_in_a_row():
    # Argo: with failureLimit applicable, Inconclusive; with failureLimit -1, Failed.
    both = metric(interval="1m", count=3, failureLimit=3, consecutiveSuccessLimit=2)
    result = replay(both, [P.SUCCESSFUL, P.FAILED, P.SUCCESSFUL])
    assert result.phase is P.INCONCLUSIVE
    assert "consecutiveSuccessLimit" in (result.message or "")
    only = metric(interval="1m", count=3, failureLimit=-1, consecutiveSuccessLimit=2)
    assert replay(only, [P.FAILED, P.FAILED]).phase is P.RUNNING  # failures never fail it
    assert replay(only, [P.FAILED, P.SUCCESSFUL, P.FAILED]).phase is P.FAILED


def test_failure_limit_minus_one_needs_a_consecutive_success_limit():
    with pytest.raises(ValueError, match="failureLimit -1 needs a consecutiveSuccessLimit"):
        metric(failureLimit=-1)


def test_count_zero_runs_until_stopped():
    assert replay(metric(interval="1m", count=0), [P.SUCCESSFUL] * 20).phase is P.RUNNING


def test_retention_keeps_that_many_measurements():
    result = MetricResult(name="m")
    for _ in range(30):
        result = record(metric(interval="1m"), result, measured(P.SUCCESSFUL), retention=20)
    assert (len(result.measurements), result.count) == (20, 30)


def test_dry_run_metrics_never_decide_the_run():
    failed_dry = MetricResult(name="dry", phase=P.FAILED, dry_run=True)
    assert run_phase([MetricResult(name="m", phase=P.SUCCESSFUL), failed_dry]) is P.SUCCESSFUL
    still_measuring = MetricResult(name="dry", phase=P.RUNNING, dry_run=True)
    assert run_phase([MetricResult(name="m", phase=P.SUCCESSFUL), still_measuring]) is P.RUNNING
    assert run_phase([MetricResult(name="m", phase=P.FAILED), still_measuring]) is P.FAILED
    assert run_phase([failed_dry]) is P.SUCCESSFUL


def test_a_web_result_and_a_judges_own_verdict():
    web = metric(successCondition="result.ok && result.successPercent >= 0.9")
    assert classify(web, [], {"ok": True, "successPercent": 0.95})[0] is P.SUCCESSFUL
    phase, message = classify(web, [], {"ok": False, "successPercent": 0.95})
    assert phase is P.FAILED
    assert message == (
        'not (result.ok && result.successPercent >= 0.9) with result {"ok": false, "successPercent": 0.95}'
    )
    assert classify(metric(), [62.5], decided=P.INCONCLUSIVE)[0] is P.INCONCLUSIVE
    assert (
        classify(metric(successCondition="result >= 50"), [62.5], decided=P.FAILED)[0]
        is P.SUCCESSFUL
    )


@pytest.mark.parametrize(
    ("condition", "special"),
    [
        ("result < 0.01", False),
        ("isNaN(result) || result < 0.01", True),
        ("len(result) == 0 || result[0] < 1", True),
        ("default(result, 0) < 0.05", True),
        ("size(result) > 0", True),
    ],
)
def test_conditions_that_handle_nan_and_no_data_ask_for_them(condition, special):
    assert handles_special_values(metric(successCondition=condition)) is special
