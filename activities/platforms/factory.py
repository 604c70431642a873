"""Picks the platform a spec's ``platform:`` section names; adding a kind is one ``case``."""

from __future__ import annotations

from collections.abc import Callable

from activities.clients import Clients
from activities.platforms.base import Platform
from activities.platforms.command import CommandPlatform
from activities.platforms.spec import CommandPlatformSpec, PlatformSpec


def platform_for(
    spec: PlatformSpec,
    service: str,
    clients: Clients,
    progress: Callable[[str], None] | None = None,
) -> Platform:
    """The platform that runs ``service`` as ``spec`` says, built with the worker's
    ``clients`` (none needed by the command platform; a Kubernetes one takes its API
    client from there). ``progress`` receives a line of output now and then."""
    match spec.selected():
        case CommandPlatformSpec() as command:
            return CommandPlatform(command, service, progress=progress)
    raise AssertionError(f"no platform for {spec.kind}")  # a PlatformSpec field without a case
