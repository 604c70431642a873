"""A Kubernetes API server double for tests, shipped like ``httpx.MockTransport``.

Real HTTP (kmock's ``KubernetesScaffold`` on aiohttp), the official client and ``kubectl``
work against it; the behaviours deployflow depends on follow the real API server
(``docs/kubernetes.md`` lists them and what is not modelled). Workflows never import this.

    with KubeApiServer() as server:
        server.write_kubeconfig(path)           # context "deployflow-double"
        server.controller.settle()              # Deployments roll out
"""

from __future__ import annotations

from activities.kubernetes.testing.api import ApiServerDouble, Recorded
from activities.kubernetes.testing.controller import DeploymentController
from activities.kubernetes.testing.errors import ApiError
from activities.kubernetes.testing.faults import Fault, Faults
from activities.kubernetes.testing.resources import ALL_KINDS, Kind
from activities.kubernetes.testing.server import DEFAULT_CONTEXT, KubeApiServer
from activities.kubernetes.testing.store import Clock, Event, Store

__all__ = [
    "ALL_KINDS",
    "DEFAULT_CONTEXT",
    "ApiError",
    "ApiServerDouble",
    "Clock",
    "DeploymentController",
    "Event",
    "Fault",
    "Faults",
    "Kind",
    "KubeApiServer",
    "Recorded",
    "Store",
]
