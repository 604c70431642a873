"""The inputs of the traffic activities: what a workflow sends to move or read traffic."""

from __future__ import annotations

from pydantic import Field

from activities.model import Model
from activities.routing.base import HeaderRoute, ServerState, Weights
from activities.routing.spec import InstanceName, RouterSpec


class TrafficInput(Model):
    """What every traffic activity takes. ``instance``: the load balancer it is meant for,
    when the router names instances (its agent refuses another host's); None (and left
    out of the payload, so histories replay) when the worker applies the router itself."""

    router: RouterSpec
    instance: InstanceName | None = Field(default=None, exclude_if=lambda v: v is None)


class SetWeightInput(TrafficInput):
    """``key`` is the workflow's business key (``{workflow_id}/step-3``), used in logs."""

    weights: Weights
    key: str


class GetWeightsInput(TrafficInput):
    """Read the split the router holds."""


class SetServerStatesInput(TrafficInput):
    """``states`` by server address as listed in the router spec; others keep theirs."""

    states: dict[str, ServerState]
    key: str


class GetServerStatesInput(TrafficInput):
    """Read every server's state."""


class SetHeaderRoutesInput(TrafficInput):
    """Every header route the router should hold (Argo's ``setHeaderRoute`` steps so far);
    an empty list removes them all."""

    routes: list[HeaderRoute]
    key: str
