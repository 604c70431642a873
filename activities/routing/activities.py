"""Temporal activities that move traffic. Sync ``def``: the worker runs them on a thread pool.

Both are declarative (``set canary to 25``), so a retry after a crash re-applies the same
state; the router skips the reload when the file already says it.
"""

from __future__ import annotations

import time

import structlog
from temporalio import activity

from activities.model import Model
from activities.routing.base import Weights
from activities.routing.factory import RouterSpec, router_for

log = structlog.get_logger()


class SetWeightInput(Model):
    """``key`` is the workflow's business key (``{workflow_id}/step-3``), used in logs."""

    router: RouterSpec
    weights: Weights
    key: str


class GetWeightsInput(Model):
    router: RouterSpec


def _attempt() -> int | None:
    return activity.info().attempt if activity.in_activity() else None


@activity.defn(name="set_weight")
def set_weight(input: SetWeightInput) -> Weights:
    """Set the traffic split and return what the router reads back afterwards."""
    started = time.monotonic()
    router = router_for(input.router)
    router.set_weights(input.weights)
    applied = router.get_weights()
    # Only the key, the router kind and weights: router specs may one day carry credentials.
    log.info(
        "set_weight",
        key=input.key,
        router=input.router.kind,
        stable=applied.stable,
        canary=applied.canary,
        attempt=_attempt(),
        duration_ms=round((time.monotonic() - started) * 1000, 1),
    )
    return applied


@activity.defn(name="get_weights")
def get_weights(input: GetWeightsInput) -> Weights:
    """The traffic split the router currently holds."""
    started = time.monotonic()
    weights = router_for(input.router).get_weights()
    log.info(
        "get_weights",
        router=input.router.kind,
        stable=weights.stable,
        canary=weights.canary,
        duration_ms=round((time.monotonic() - started) * 1000, 1),
    )
    return weights
