"""The Kayenta-style judge: Mann-Whitney shift and interval against known results, metric
classification as NetflixACAJudge does it, and group scoring."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError
from scipy import stats

from activities.metrics.judge import (
    classify_metric,
    cles,
    judge,
    mann_whitney_shift,
    mean_ratio,
    score,
)
from activities.metrics.judge_spec import (
    JudgedMetric,
    JudgeMetric,
    JudgeProviderSpec,
    Sample,
    Thresholds,
)

QUERY = 'avg(latency{version="{{scope}}"})'


def metric(**fields: Any) -> JudgeMetric:
    return JudgeMetric.model_validate({"name": "latency", "query": QUERY, **fields})


def noisy(mean: float, n: int = 40, seed: int = 7) -> list[float]:
    """``n`` samples around ``mean`` with 3 % noise (the same noise for the same seed)."""
    rng = np.random.default_rng(seed)
    return list(mean * (1 + 0.03 * rng.standard_normal(n)))


# --- Mann-Whitney ----------------------------------------------------------------------


def test_shift_and_interval_match_kayenta_and_r():
    # Kayenta's MannWhitneySuite ("tie out with R": wilcox.test(x, y, conf.int = TRUE)).
    shift = mann_whitney_shift([10.0, 20.0, 30.0, 40.0], [1.0, 2.0, 3.0, 4.0], confidence=0.95)
    assert (shift.estimate, shift.lower, shift.upper) == pytest.approx((22.5, 6.0, 39.0))


def test_the_u_statistic_is_the_canary_samples_as_r_and_hollander_wolfe_give_it():
    # R's ?wilcox.test permeability example (Hollander & Wolfe 1973, p. 69): W = 35,
    # p = 0.1103 for "greater" with the normal approximation and no continuity correction.
    x = [0.80, 0.83, 1.89, 1.04, 1.45, 1.38, 1.91, 1.64, 0.73, 1.46]
    y = [1.15, 0.88, 0.90, 0.74, 1.21]
    test = stats.mannwhitneyu(
        x, y, alternative="greater", method="asymptotic", use_continuity=False
    )
    assert test.statistic == 35
    assert test.pvalue == pytest.approx(0.1103, abs=5e-5)
    shift = mann_whitney_shift(x, y, confidence=0.95)
    assert shift.lower < 0 < shift.upper  # not significant at 95 %
    assert shift.estimate == pytest.approx(float(np.median(np.subtract.outer(x, y))))


def test_the_interval_holds_a_known_shift():
    shift = mann_whitney_shift(noisy(130, seed=1), noisy(100, seed=2), confidence=0.98)
    assert shift.lower < 30 < shift.upper
    assert shift.estimate == pytest.approx(30, rel=0.1)


def test_two_constant_samples_shift_by_their_difference():
    shift = mann_whitney_shift([5.0] * 10, [4.0] * 10, confidence=0.98)
    assert (shift.estimate, shift.lower, shift.upper) == (1.0, 1.0, 1.0)


def test_effect_sizes():
    assert mean_ratio([13.0, 13.0], [10.0, 10.0]) == pytest.approx(1.3)
    assert math.isnan(mean_ratio([1.0], [0.0]))
    assert cles([2.0, 3.0], [1.0, 1.0]) == 1.0
    assert cles([1.0, 2.0], [1.0, 2.0]) == 0.5


# --- classification --------------------------------------------------------------------


def test_a_canary_thirty_percent_slower_is_high():
    judged = classify_metric(metric(direction="increase"), noisy(130, seed=1), noisy(100, seed=2))
    assert judged.classification == "High"
    assert judged.ratio == pytest.approx(1.3, rel=0.03)
    assert (judged.lower or 0) > 0
    assert (judged.canary.count, judged.baseline.count) == (40, 40)


def test_an_equal_canary_passes():
    judged = classify_metric(metric(), noisy(100, seed=1), noisy(100, seed=2))
    assert judged.classification == "Pass"
    assert (judged.lower or 0) < 0 < (judged.upper or 0)


@pytest.mark.parametrize(
    ("fields", "canary_mean", "expected"),
    [
        ({"direction": "decrease"}, 130, "Pass"),  # only a drop counts
        ({"direction": "decrease"}, 70, "Low"),
        ({"direction": "either"}, 70, "Low"),
        ({"direction": "increase"}, 70, "Pass"),
        ({"effectSize": {"allowedIncrease": 1.5}}, 130, "Pass"),  # significant but small
        ({"effectSize": {"allowedIncrease": 1.2}}, 130, "High"),
        ({"effectSize": {"measure": "cles", "allowedIncrease": 0.9}}, 130, "High"),
    ],
)
def test_direction_and_effect_size_limits(fields, canary_mean, expected):
    judged = classify_metric(metric(**fields), noisy(canary_mean, seed=1), noisy(100, seed=2))
    assert judged.classification == expected


def test_a_critical_metric_is_critical_only_beyond_the_critical_effect_size():
    slower, baseline = noisy(130, seed=1), noisy(100, seed=2)
    mild = classify_metric(
        metric(critical=True, effectSize={"criticalIncrease": 1.5}), slower, baseline
    )
    assert (mild.classification, mild.critical) == ("High", False)
    severe = classify_metric(
        metric(critical=True, effectSize={"criticalIncrease": 1.2}), slower, baseline
    )
    assert (severe.classification, severe.critical) == ("High", True)
    assert severe.reason == "latency was classified High (critical)"


def test_no_data_identical_data_and_nans():
    assert classify_metric(metric(), [], [1.0]).classification == "Nodata"
    assert (
        classify_metric(metric(mustHaveData=True), [], [1.0]).classification == "NodataFailMetric"
    )
    assert classify_metric(metric(critical=True), [1.0], []).critical is True
    assert classify_metric(metric(nanStrategy="replace"), [], [1.0]).classification == "Pass"
    same = classify_metric(metric(), [3.0, 1.0, 2.0], [1.0, 2.0, 3.0])
    assert (same.classification, same.reason) == ("Pass", "canary and baseline data are identical")
    removed = classify_metric(metric(), [math.nan, 5.0, 5.0], [5.0, 5.0])
    assert (removed.classification, removed.canary.count) == ("Pass", 2)
    nan_only = classify_metric(metric(), [math.nan], [1.0])
    assert nan_only.classification == "Nodata"


# --- scoring ---------------------------------------------------------------------------


def judged(
    name: str, classification: str, groups: list[str], critical: bool = False
) -> JudgedMetric:
    sample = Sample(count=10, mean=1.0)
    return JudgedMetric(
        name=name,
        classification=classification,  # type: ignore[arg-type]
        critical=critical,
        canary=sample,
        baseline=sample,
        groups=groups,
        reason=f"{name} was classified {classification}",
    )


RESULTS = [
    judged("p50", "Pass", ["latency"]),
    judged("p99", "High", ["latency"]),
    judged("errors", "Pass", ["errors"]),
]


@pytest.mark.parametrize(
    ("weights", "thresholds", "total", "verdict"),
    [
        ({}, Thresholds(), 75.0, "Marginal"),  # groups share equally: 50/2 + 100/2
        ({"latency": 60}, Thresholds(), 70.0, "Fail"),  # 0.6 * 50 + 0.4 * 100
        ({"latency": 20}, Thresholds(), 90.0, "Marginal"),
        ({"latency": 20}, Thresholds.model_validate({"pass": 90, "marginal": 50}), 90.0, "Pass"),
    ],
)
def test_group_scores_weighted_into_a_verdict(weights, thresholds, total, verdict):
    judgement = score(RESULTS, thresholds, weights)
    assert {g.name: g.score for g in judgement.groups} == {"latency": 50.0, "errors": 100.0}
    assert (judgement.score, judgement.verdict) == (total, verdict)


def test_a_failing_critical_metric_or_too_little_data_scores_zero():
    critical = score(
        [*RESULTS[:1], judged("p99", "High", ["latency"], critical=True)], Thresholds(), {}
    )
    assert (critical.score, critical.verdict) == (0.0, "Fail")
    assert critical.reason == "critical metric failed: p99 was classified High"
    nodata = score([judged("a", "Nodata", ["x"]), judged("b", "Pass", ["y"])], Thresholds(), {})
    assert (nodata.score, nodata.reason) == (0.0, "50% or more of the metrics have no data")
    some = score([judged("a", "Nodata", ["x"]), *RESULTS], Thresholds(), {})
    assert [g.no_data for g in some.groups] == [True, False, False]
    assert some.score == pytest.approx((100 + 50 + 100) / 3, abs=0.01)  # no data counts as 100


def test_judge_classifies_every_metric_and_summarises_why():
    spec = JudgeProviderSpec.model_validate(
        {
            "prometheus": {"address": "http://127.0.0.1:9090"},
            "metrics": [
                {"name": "latency", "query": QUERY, "direction": "increase"},
                {"name": "errors", "query": 'errors{version="{{ scope }}"}'},
            ],
        }
    )
    judgement = judge(
        spec,
        {"latency": noisy(130, seed=1), "errors": noisy(1, seed=3)},
        {"latency": noisy(100, seed=2), "errors": noisy(1, seed=4)},
    )
    assert [m.classification for m in judgement.metrics] == ["High", "Pass"]
    assert (judgement.score, judgement.verdict) == (50.0, "Fail")
    assert judgement.summary().startswith("score 50 (Fail): latency High x1.3")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"metrics": [{"name": "m", "query": "up"}]}, "query must contain {{scope}}"),
        ({"thresholds": {"pass": 50, "marginal": 80}}, "marginal (80) must not exceed pass (50)"),
        ({"groupWeights": {"nope": 10}}, "groupWeights names groups no metric is in: nope"),
        ({"groupWeights": {"latency": 120}}, "add up to at most 100"),
    ],
)
def test_bad_judge_specs_are_refused(fields, message):
    spec = {
        "prometheus": {"address": "http://p:9090"},
        "metrics": [{"name": "latency", "query": QUERY}],
    }
    with pytest.raises(ValidationError) as refused:
        JudgeProviderSpec.model_validate(spec | fields)
    assert message in str(refused.value)
