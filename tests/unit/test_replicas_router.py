"""The replica-count router's arithmetic and patches (pure): Argo's basic-canary rounding."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from activities.routing.base import Weights
from activities.routing.kube import MERGE_PATCH
from activities.routing.replicas import TOTAL, replica_counts, replica_weights, replicas_patch


@pytest.mark.parametrize(
    ("weight", "total", "split"),
    [
        (0, 5, (5, 0)),
        (100, 5, (0, 5)),
        (20, 10, (8, 2)),
        (25, 4, (3, 1)),
        (10, 4, (3, 1)),  # 0.4 of a pod: at least one canary pod between 1 and 99 %
        (99, 4, (1, 3)),  # ... and at least one stable pod
        (50, 3, (1, 2)),  # a tie (1.5 pods) rounds up, as Argo's controller does
        (10, 1, (1, 1)),  # one replica: a pod each, Argo's default surge
        (0, 0, (0, 0)),
    ],
)
def test_a_weight_is_the_nearest_whole_number_of_canary_pods(
    weight: int, total: int, split: tuple[int, int]
):
    assert replica_counts(weight, total) == split


@given(st.integers(0, 100), st.integers(2, 500))
def test_the_total_is_kept_and_reading_back_is_near_the_weight(weight: int, total: int):
    stable, canary = replica_counts(weight, total)
    assert stable + canary == total
    assert (canary == 0) == (weight == 0)
    assert (stable == 0) == (weight == 100)
    read = replica_weights(stable, canary).canary
    assert abs(read - weight) <= max(50 / total + 1, 100 / total)


def test_a_patch_sets_only_what_differs_guarded_by_the_resource_version():
    deployment = {
        "metadata": {"resourceVersion": "7", "annotations": {"team": "shop"}},
        "spec": {"replicas": 4},
    }
    patch = replicas_patch(deployment, 3, {TOTAL: "4"})
    assert patch is not None
    assert patch.content_type == MERGE_PATCH
    assert patch.body == {
        "metadata": {"annotations": {TOTAL: "4"}, "resourceVersion": "7"},
        "spec": {"replicas": 3},
    }
    assert replicas_patch(deployment, 4, {TOTAL: None}) is None
    assert replicas_patch(deployment, None) is None


def test_no_canary_pods_read_as_all_on_stable():
    assert replica_weights(0, 0) == Weights(stable=100, canary=0)
    assert replica_weights(999, 1).canary == 1
