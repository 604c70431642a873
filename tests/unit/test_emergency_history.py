"""Reading the router's two lists and the last good version out of history."""

from __future__ import annotations

from activities.platforms.models import StableRecord
from starters.cli import _expected_failure
from starters.errors import EXIT_INVALID
from workflows.rollouts.emergency_plan import (
    Deployed,
    NoRollbackTarget,
    last_good,
    lists_after,
    recorded_template,
)


def promoted(v: str) -> Deployed:
    return Deployed("promoted", v, f"rollout-{v}", "r")


def failed(v: str | None) -> Deployed:
    return Deployed("failed", v, "rollout-x", "r")


def rollback(v: str, flipped: bool) -> Deployed:
    return Deployed("rollback", v, "rollback-x", "r", flipped=flipped)


def test_promotions_alternate_the_lists():
    assert lists_after([promoted("v1"), promoted("v2")]) == ("v2", "v1")


def test_a_rollout_that_did_not_promote_leaves_its_version_on_the_idle_list():
    assert lists_after([promoted("v1"), promoted("v2"), failed("v3")]) == ("v2", "v3")
    assert lists_after([promoted("v1"), failed(None)]) == ("v1", None)


def test_a_rollback_flip_swaps_them():
    assert lists_after([promoted("v1"), promoted("v2"), rollback("v1", True)]) == ("v1", "v2")


def test_after_a_rollback_its_target_is_live_even_without_a_flip():
    assert lists_after([failed(None), rollback("v1", False)]) == ("v1", None)


def test_last_good_is_the_version_before_the_live_one():
    assert last_good([promoted("v1"), promoted("v2")], running=False) == "v1"


def test_last_good_after_a_rollback_is_its_target_so_a_second_run_does_nothing():
    timeline = [promoted("v1"), promoted("v2"), rollback("v1", True)]
    live, _ = lists_after(timeline)
    assert last_good(timeline, running=False) == live == "v1"


def test_with_a_rollout_running_the_live_version_is_the_good_one():
    assert last_good([promoted("v1"), promoted("v2")], running=True) == "v2"


def test_nothing_known():
    assert last_good([promoted("v1")], running=False) is None
    assert last_good([], running=True) is None


def record(version: str, image: str) -> StableRecord:
    return StableRecord(
        deployment="ctx/shop/deployment/checkout",
        uid="u",
        template={"spec": {"containers": [{"name": "app", "image": image}]}},
        replicas=3,
        strategy={"type": "RollingUpdate"},
        progress_deadline_seconds=600,
        container="app",
        image=image,
        version=version,
    )


def promoted_over(v: str, stable: StableRecord) -> Deployed:
    return Deployed("promoted", v, f"rollout-{v}", "r", stable=stable)


def test_on_kubernetes_the_version_a_promotion_found_live_is_the_last_good_one():
    v1 = record("v1", "shop:v1")
    timeline = [promoted_over("v2", v1)]  # v1 was the team's own, before deployflow
    assert last_good(timeline, running=False) == "v1"
    assert recorded_template(timeline, "v1") == v1


def test_the_newest_record_of_the_target_wins_and_another_version_has_none():
    old, edited = record("v1", "shop:v1"), record("v1", "shop:v1")
    edited.template["metadata"] = {"annotations": {"team": "edited between rollouts"}}
    timeline = [promoted_over("v2", old), promoted_over("v1", record("v2", "shop:v2"))]
    timeline.append(promoted_over("v3", edited))
    assert recorded_template(timeline, "v1") == edited
    assert recorded_template(timeline, "v0") is None
    assert recorded_template(timeline, None) is None


def test_no_version_to_roll_back_to_is_a_usage_error_in_the_cli(capsys):
    """The plan's refusal (raised below starters) exits 2 naming the argument, no traceback."""
    refusal = NoRollbackTarget("--to: history knows no other good version")

    assert _expected_failure(refusal, profile=None) == EXIT_INVALID
    assert capsys.readouterr().err == "deployflow: --to: history knows no other good version\n"
