"""Consecutive-outcome thresholds, as the kubelet counts them."""

from __future__ import annotations

import pytest

from activities.health.spec import HealthCheck, TcpCheck
from activities.health.thresholds import Decision, ProbeOutcome, ProbeTally

OK = ProbeOutcome(True, "HTTP 200")
DOWN = ProbeOutcome(False, "HTTP 503 (expected 200)")


def feed(tally: ProbeTally, *outcomes: ProbeOutcome) -> ProbeTally:
    for outcome in outcomes:
        tally = tally.observe(outcome)
    return tally


def test_defaults_match_kubernetes_one_success_or_three_failures():
    tally = ProbeTally()
    assert (tally.success_threshold, tally.failure_threshold) == (1, 3)
    assert tally.decision is Decision.PROBING
    assert feed(tally, OK).decision is Decision.HEALTHY
    assert feed(tally, DOWN, DOWN).decision is Decision.PROBING
    assert feed(tally, DOWN, DOWN, DOWN).decision is Decision.UNHEALTHY


def test_thresholds_come_from_the_check():
    check = HealthCheck(tcp=TcpCheck(), success_threshold=2, failure_threshold=5)
    tally = ProbeTally.for_check(check)
    assert (tally.success_threshold, tally.failure_threshold) == (2, 5)


def test_healthy_needs_consecutive_successes_and_a_failure_resets_them():
    tally = feed(ProbeTally(success_threshold=3), OK, OK, DOWN, OK, OK)
    assert tally.decision is Decision.PROBING
    assert (tally.consecutive_successes, tally.consecutive_failures) == (2, 0)
    assert feed(tally, OK).decision is Decision.HEALTHY


def test_unhealthy_needs_consecutive_failures_and_a_success_resets_them():
    tally = feed(ProbeTally(failure_threshold=2), DOWN, OK, DOWN)
    assert tally.decision is Decision.PROBING
    assert (tally.consecutive_successes, tally.consecutive_failures) == (0, 1)
    assert feed(tally, DOWN).decision is Decision.UNHEALTHY


def test_a_flapping_target_never_decides():
    tally = feed(ProbeTally(success_threshold=2, failure_threshold=2), *[DOWN, OK] * 10)
    assert tally.decision is Decision.PROBING
    assert tally.probes == 20
    assert tally.summary() == "undecided after 20 probes; HTTP 200"


def test_counts_probes_and_keeps_the_last_message():
    tally = feed(ProbeTally(), DOWN, DOWN, DOWN)
    assert tally.probes == 3
    assert tally.last_message == "HTTP 503 (expected 200)"
    assert tally.summary() == "unhealthy: 3 failures in a row; HTTP 503 (expected 200)"


def test_observe_leaves_the_earlier_tally_alone():
    before = ProbeTally()
    after = before.observe(OK)
    assert before.probes == 0
    assert before.decision is Decision.PROBING
    assert after.decision is Decision.HEALTHY
    assert after.summary() == "healthy: 1 success in a row; HTTP 200"


@pytest.mark.parametrize(("success", "failure"), [(0, 3), (1, 0)])
def test_thresholds_below_one_are_rejected(success, failure):
    with pytest.raises(ValueError, match="thresholds must be >= 1"):
        ProbeTally(success_threshold=success, failure_threshold=failure)
