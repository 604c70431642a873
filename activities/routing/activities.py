"""Temporal activities that move traffic. Sync ``def``: the worker runs them on a thread pool.

Each heartbeats while it works (``keep_alive``), so workflows give them a heartbeat timeout
of a few seconds: a worker killed mid-shift costs seconds, not the start-to-close timeout.

All are declarative (``set canary to 25``, ``drain 10.0.0.3:80``), so a retry after a crash
re-applies the same state; the router skips the reload when it already holds it.
"""

from __future__ import annotations

import time

import structlog
from temporalio import activity

from activities.heartbeat import keep_alive
from activities.model import Model
from activities.routing.base import ServerState, Weights
from activities.routing.factory import RouterSpec, router_for

log = structlog.get_logger()


class SetWeightInput(Model):
    """``key`` is the workflow's business key (``{workflow_id}/step-3``), used in logs."""

    router: RouterSpec
    weights: Weights
    key: str


class GetWeightsInput(Model):
    router: RouterSpec


class SetServerStatesInput(Model):
    """``states`` by server address as listed in the router spec; others keep theirs."""

    router: RouterSpec
    states: dict[str, ServerState]
    key: str


class GetServerStatesInput(Model):
    router: RouterSpec


def _attempt() -> int | None:
    return activity.info().attempt if activity.in_activity() else None


@activity.defn(name="set_weight")
def set_weight(input: SetWeightInput) -> Weights:
    """Set the traffic split and return what the router reads back afterwards."""
    started = time.monotonic()
    router = router_for(input.router)
    with keep_alive():
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
    with keep_alive():
        weights = router_for(input.router).get_weights()
    log.info(
        "get_weights",
        router=input.router.kind,
        stable=weights.stable,
        canary=weights.canary,
        duration_ms=round((time.monotonic() - started) * 1000, 1),
    )
    return weights


@activity.defn(name="set_server_states")
def set_server_states(input: SetServerStatesInput) -> dict[str, ServerState]:
    """Drain, take out or bring back servers; returns every server's state read back."""
    started = time.monotonic()
    router = router_for(input.router)
    with keep_alive():
        router.set_server_states(input.states)
        applied = router.get_server_states()
    log.info(
        "set_server_states",
        key=input.key,
        router=input.router.kind,
        states={address: str(state) for address, state in input.states.items()},
        attempt=_attempt(),
        duration_ms=round((time.monotonic() - started) * 1000, 1),
    )
    return applied


@activity.defn(name="get_server_states")
def get_server_states(input: GetServerStatesInput) -> dict[str, ServerState]:
    """Every server's state (``ready``, ``drain``, ``maint``) by address."""
    started = time.monotonic()
    with keep_alive():
        states = router_for(input.router).get_server_states()
    log.info(
        "get_server_states",
        router=input.router.kind,
        not_ready={address: str(state) for address, state in states.items() if state != "ready"},
        duration_ms=round((time.monotonic() - started) * 1000, 1),
    )
    return states
