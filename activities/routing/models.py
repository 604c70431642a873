"""The inputs of the traffic activities: what a workflow sends to move or read traffic."""

from __future__ import annotations

from activities.model import Model
from activities.routing.base import HeaderRoute, ServerState, Weights
from activities.routing.spec import RouterSpec


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


class SetHeaderRoutesInput(Model):
    """Every header route the router should hold (Argo's ``setHeaderRoute`` steps so far);
    an empty list removes them all."""

    router: RouterSpec
    routes: list[HeaderRoute]
    key: str
