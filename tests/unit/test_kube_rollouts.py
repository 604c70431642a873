"""The Deployment controller arithmetic of the double (``rollouts.py``) against the
guarantees of RollingUpdate (https://kubernetes.io/docs/concepts/workloads/controllers/deployment/#rolling-update-deployment):
at most ``replicas + maxSurge`` pods, at least ``replicas - maxUnavailable`` available,
and a rollout whose pods become available always finishes."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from activities.kubernetes.testing.rollouts import budgets, first_size, rolling_sizes


def rs(name: str, replicas: int, available: int, born: str = "2026-01-01T00:00:00Z") -> dict:
    return {
        "metadata": {"name": name, "creationTimestamp": born},
        "spec": {"replicas": replicas},
        "status": {"availableReplicas": available},
    }


@pytest.mark.parametrize(
    ("strategy", "replicas", "expected"),
    [
        ({}, 4, (1, 1)),  # 25 %/25 %
        ({}, 3, (1, 0)),  # surge rounds up, unavailable down
        ({"rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}}, 3, (0, 1)),  # never both 0
        ({"rollingUpdate": {"maxSurge": "50%", "maxUnavailable": 2}}, 5, (3, 2)),
    ],
)
def test_budgets(strategy, replicas, expected):
    assert (
        budgets({"replicas": replicas, "strategy": {"type": "RollingUpdate", **strategy}})
        == expected
    )


def test_a_first_replica_set_starts_full_and_a_later_one_within_the_surge():
    assert first_size(4, 1, []) == 4
    assert first_size(4, 1, [rs("old", 4, 4)]) == 1


states = st.integers(1, 6).flatmap(
    lambda desired: st.tuples(
        st.just(desired),
        st.integers(0, 3),
        st.integers(0, 3),
        st.integers(0, desired).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n))),
        st.lists(
            st.integers(0, desired).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n))),
            max_size=2,
        ),
    )
)


def build(state):
    desired, surge, unavailable, (new_size, new_available), old_sizes = state
    assume(surge or unavailable)
    new = rs("new", new_size, new_available, "2026-01-02T00:00:00Z")
    old = [rs(f"old{i}", size, available) for i, (size, available) in enumerate(old_sizes)]
    assume(
        new_size + sum(s for s, _ in old_sizes) <= desired + surge
    )  # a state the controller reaches
    return desired, surge, unavailable, new, old


def available_after(sets, sizes):
    return sum(
        min(
            s["status"]["availableReplicas"],
            sizes.get(s["metadata"]["name"], s["spec"]["replicas"]),
        )
        for s in sets
    )


@given(states)
def test_one_sync_keeps_the_surge_and_availability_bounds(state):
    desired, surge, unavailable, new, old = build(state)
    sizes = rolling_sizes(new, old, desired, surge, unavailable)
    after = {
        s["metadata"]["name"]: sizes.get(s["metadata"]["name"], s["spec"]["replicas"])
        for s in [new, *old]
    }
    assert all(size >= 0 for size in after.values())
    assert sum(after.values()) <= desired + surge
    assert all(
        after[o["metadata"]["name"]] <= o["spec"]["replicas"] for o in old
    )  # old only shrink
    before = available_after([new, *old], {})
    if before >= desired - unavailable:
        assert available_after([new, *old], sizes) >= desired - unavailable


@given(states)
def test_a_rollout_whose_pods_become_available_finishes(state):
    desired, surge, unavailable, new, old = build(state)
    for _ in range(4 * (desired + 2)):
        for s in [new, *old]:  # every pod becomes available between syncs
            s["status"]["availableReplicas"] = s["spec"]["replicas"]
        sizes = rolling_sizes(new, old, desired, surge, unavailable)
        for s in [new, *old]:
            s["spec"]["replicas"] = sizes.get(s["metadata"]["name"], s["spec"]["replicas"])
        if not sizes:
            break
    assert new["spec"]["replicas"] == desired
    assert all(o["spec"]["replicas"] == 0 for o in old)
