"""What a worker builds once and hands to every factory (``router_for``, ``platform_for``,
``migrator_for``): long-lived clients, and the state of routers that live in the worker.

The VM routers and platforms need none of it (they run a command or open a socket per
call); the nop router keeps its memory here, and Kubernetes platforms and routers take
their API client per kubeconfig context from ``kubernetes`` (built on first use from the
worker's configuration, never by a workflow or at import time).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from activities.kubeconfig import KubeClients
from activities.routing.nop import NopMemory


@dataclass(frozen=True)
class Clients:
    nop: NopMemory = field(default_factory=NopMemory)
    kubernetes: KubeClients = field(default_factory=KubeClients)
