"""The least-squares line behind memory-leak detection, on data with known answers."""

from __future__ import annotations

import math
import random

import pytest

from activities.metrics.activities import MetricProviderSpec
from activities.metrics.base import MetricUnavailable
from activities.metrics.prometheus import _series
from activities.metrics.trend import (
    MemoryTrendInput,
    MemoryTrendOutput,
    linear_fit,
    memory_trend,
    trend_of,
)

T0 = 1_750_000_000.0  # unix seconds: the fit must not lose precision on them


def test_a_straight_line_is_found_exactly():
    points = [(T0 + t, 100.0 + 2.5 * t) for t in range(0, 60, 2)]
    fit = linear_fit(points)
    assert fit is not None
    assert fit.slope == pytest.approx(2.5, abs=1e-9)
    assert fit.intercept == pytest.approx(100.0, abs=1e-6)
    assert fit.r2 == pytest.approx(1.0)


def test_known_points_give_the_textbook_answer():
    # x = 0..4, y = 1, 3, 2, 5, 4: slope 0.8, intercept 1.4, R² = 6.4 / 10 = 0.64
    fit = linear_fit([(T0 + x, y) for x, y in enumerate([1.0, 3.0, 2.0, 5.0, 4.0])])
    assert fit is not None
    assert (fit.slope, fit.intercept, fit.r2) == pytest.approx((0.8, 1.4, 0.64))


def test_a_constant_series_has_no_slope_and_fits_perfectly():
    fit = linear_fit([(T0 + t, 42.0) for t in range(10)])
    assert fit is not None
    assert (fit.slope, fit.r2) == (0.0, 1.0)


def test_noise_around_a_slope_keeps_the_slope_and_lowers_r2():
    rng = random.Random(7)
    points = [(T0 + t, 1e8 + 1000.0 * t + rng.gauss(0, 5000)) for t in range(300)]
    fit = linear_fit(points)
    assert fit is not None
    assert fit.slope == pytest.approx(1000.0, rel=0.05)
    assert 0.9 < fit.r2 < 1.0


def test_a_sawtooth_has_a_small_r2():
    points = [(T0 + t, float(t % 10)) for t in range(100)]  # garbage collected every 10 s
    fit = linear_fit(points)
    assert fit is not None
    assert fit.r2 < 0.05


@pytest.mark.parametrize("count", [0, 1, 2])
def test_fewer_than_three_points_are_no_trend(count):
    assert linear_fit([(T0 + t, float(t)) for t in range(count)]) is None


def test_points_all_at_one_time_are_no_trend():
    assert linear_fit([(T0, 1.0), (T0, 2.0), (T0, 3.0)]) is None


def test_a_series_trend_leaves_out_nan_and_inf():
    points = [(T0, math.nan), (T0 + 1, 10.0), (T0 + 2, math.inf), (T0 + 3, 16.0), (T0 + 4, 19.0)]
    trend = trend_of({"instance": "a"}, points)
    assert (trend.points, trend.first, trend.last) == (3, 10.0, 19.0)
    assert trend.slope_per_second == pytest.approx(3.0)
    assert trend.r2 == pytest.approx(1.0)


def test_a_short_series_has_ends_but_no_fit():
    trend = trend_of({}, [(T0, 5.0), (T0 + 1, 6.0)])
    assert (trend.points, trend.first, trend.last, trend.slope_per_second, trend.r2) == (
        2, 5.0, 6.0, None, None,
    )  # fmt: skip
    empty = trend_of({}, [])
    assert (empty.points, empty.first, empty.last) == (0, None, None)


def test_a_matrix_result_becomes_labelled_points():
    result = [{"metric": {"job": "demo"}, "values": [[T0, "1"], [T0 + 1, "NaN"]]}]
    [(labels, points)] = _series(result)
    assert labels == {"job": "demo"}
    assert points[0] == (T0, 1.0)
    assert math.isnan(points[1][1])


def test_an_instant_vector_is_not_a_matrix():
    with pytest.raises(MetricUnavailable, match="unexpected range query result"):
        _series([{"metric": {}, "value": [T0, "1"]}])


def test_the_step_defaults_to_a_thirtieth_of_the_window_and_at_least_a_second():
    provider = MetricProviderSpec.model_validate(
        {"prometheus": {"address": "http://127.0.0.1:1", "query": "up"}}
    )
    assert MemoryTrendInput(provider=provider, window_seconds=600, key="k").step_seconds == 20
    assert MemoryTrendInput(provider=provider, window_seconds=10, key="k").step_seconds == 1
    explicit = MemoryTrendInput(provider=provider, window_seconds=600, step_seconds=5, key="k")
    assert explicit.step_seconds == 5


def test_an_unreachable_prometheus_is_an_error_not_an_exception():
    provider = MetricProviderSpec.model_validate(
        {"prometheus": {"address": "http://127.0.0.1:1", "query": "up", "timeout": 1}}
    )
    output = memory_trend(MemoryTrendInput(provider=provider, window_seconds=60, key="k"))
    assert output.series == []
    assert output.error is not None
    assert output.error.startswith("prometheus at http://127.0.0.1:1 unreachable")
    assert MemoryTrendOutput.model_validate_json(output.model_dump_json()) == output
