"""Picks the platform a spec's ``platform:`` section names; adding a kind is one ``case``."""

from __future__ import annotations

from collections.abc import Callable

from activities.clients import Clients
from activities.errors import INVALID_SPEC, failure
from activities.platforms.base import Platform
from activities.platforms.command import CommandPlatform
from activities.platforms.kubernetes import KubernetesDeployments
from activities.platforms.spec import CommandPlatformSpec, KubernetesPlatformSpec, PlatformSpec


def platform_for(
    spec: PlatformSpec,
    service: str,
    clients: Clients,
    progress: Callable[[str], None] | None = None,
) -> Platform:
    """The platform that runs ``service`` on hosts as ``spec`` says. ``progress`` receives
    a line of output now and then."""
    match spec.selected():
        case CommandPlatformSpec() as command:
            return CommandPlatform(command, service, progress=progress)
        case KubernetesPlatformSpec():
            raise failure(
                INVALID_SPEC,
                "platform kubernetes runs workloads, not host:port targets "
                "(its activities are record_stable, apply_canary, set_stable, scale, restart)",
            )
    raise AssertionError(f"no platform for {spec.kind}")  # a PlatformSpec field without a case


def deployments_for(
    spec: KubernetesPlatformSpec,
    clients: Clients,
    progress: Callable[[str], None] | None = None,
) -> KubernetesDeployments:
    """The Deployments of ``spec``, with the worker's API client for its context."""
    target = spec.deployment
    return KubernetesDeployments(target, clients.kubernetes.api(target.context), progress)
