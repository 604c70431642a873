"""A monitor's judgement of a Deployment from its status (pure): healthy only when every
replica is available and the controller says Available; a rollout is not a failure."""

from __future__ import annotations

from typing import Any

from activities.health.readiness import missing, readiness

WHERE = "prod-a/shop/deployment/checkout"


def deployment(
    replicas: int = 3, generation: int = 2, pods: int | None = None, **status: Any
) -> dict[str, Any]:
    """``pods``: status.replicas (old and new pods), default the updated ones."""
    counted = {"replicas": status.get("updatedReplicas", 0) if pods is None else pods}
    return {
        "metadata": {"name": "checkout", "generation": generation},
        "spec": {"replicas": replicas},
        "status": {"observedGeneration": 2, **counted, **status},
    }


def available(flag: str = "True", message: str = "Deployment has minimum availability.") -> Any:
    return [{"type": "Available", "status": flag, "message": message}]


def test_every_replica_available_is_healthy():
    found = readiness(
        deployment(replicas=3, updatedReplicas=3, availableReplicas=3, conditions=available()),
        WHERE,
    )
    assert found.healthy
    assert (found.replicas, found.available_replicas) == (3, 3)
    assert found.message == "3 of 3 replicas available"


def test_pods_gone_unready_are_unhealthy_with_the_controllers_reason():
    unready = available("False", "Deployment does not have minimum availability.")
    found = readiness(
        deployment(replicas=3, updatedReplicas=3, availableReplicas=1, conditions=unready),
        WHERE,
    )
    assert not found.healthy
    assert not found.rolling_out
    assert found.message == (
        "1 of 3 replicas available; Deployment does not have minimum availability."
    )


def test_one_replica_short_while_still_available_is_unhealthy():
    found = readiness(
        deployment(replicas=4, updatedReplicas=4, availableReplicas=3, conditions=available()),
        WHERE,
    )
    assert not found.healthy
    assert found.message == "3 of 4 replicas available"


def test_a_rollout_in_progress_is_rolling_out_not_unhealthy():
    for changed in (
        deployment(generation=3, updatedReplicas=3, availableReplicas=3),  # not yet observed
        deployment(updatedReplicas=1, availableReplicas=2, conditions=available()),
        deployment(pods=4, updatedReplicas=3, availableReplicas=3, conditions=available()),
    ):
        found = readiness(changed, WHERE)
        assert found.rolling_out, changed
        assert not found.healthy
        assert found.message.startswith("rolling out: ")


def test_a_rollout_past_its_deadline_is_unhealthy():
    stuck = [
        {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
         "message": 'ReplicaSet "checkout-1" has timed out progressing.'},
    ]  # fmt: skip
    found = readiness(deployment(updatedReplicas=1, conditions=stuck), WHERE)
    assert not found.healthy
    assert not found.rolling_out
    assert "exceeded its progress deadline" in found.message


def test_scaled_to_zero_is_healthy_as_kubernetes_judges_it():
    assert readiness(deployment(replicas=0), WHERE).healthy


def test_a_missing_deployment_is_unhealthy():
    found = missing(WHERE)
    assert not found.healthy
    assert found.message == "deployment not found"
