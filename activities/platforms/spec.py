"""The ``platform:`` vocabulary of a spec: one model per platform kind and the
``PlatformSpec`` one-of. Pure pydantic, apart from the implementations, so reading a spec
(a workflow, the CLI) imports no subprocess code.

    platform:
      command:
        deploy:  [ssh, "{host}", sudo, /opt/app/deploy.sh, "{version}"]
        current: [ssh, "{host}", cat, /opt/app/current-version]
        restart: [ssh, "{host}", sudo, systemctl, restart, "{service}"]

What the command platform does with them: :mod:`activities.platforms.command`.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Final

from pydantic import AfterValidator, Field

from activities.argv import placeholders
from activities.model import Model, OneOf, PositiveSeconds

PLACEHOLDERS: Final = ("host", "port", "version", "service")
_KNOWN: Final = f"known: {', '.join(PLACEHOLDERS)}"


def _any_placeholder(arg: str) -> str:
    placeholders(arg, PLACEHOLDERS, _KNOWN)
    return arg


def _no_version(arg: str) -> str:
    if "version" in placeholders(arg, PLACEHOLDERS, _KNOWN):
        raise ValueError("{version} is only known to deploy")
    return arg


# Validated per element, so an error names it: ``stop[3]: {version} is only known to deploy``.
DeployArgv = Annotated[list[Annotated[str, AfterValidator(_any_placeholder)]], Field(min_length=1)]
Argv = Annotated[list[Annotated[str, AfterValidator(_no_version)]], Field(min_length=1)]


class CommandPlatformSpec(Model):
    """Argv templates per action; only ``deploy`` is required. ``env`` must hold no secrets:
    it is part of the workflow's input and history (its values are never logged)."""

    deploy: DeployArgv
    start: Argv | None = None
    stop: Argv | None = None
    restart: Argv | None = None
    current: Argv | None = None
    timeout_seconds: PositiveSeconds = 300.0
    env: dict[str, str] = Field(default_factory=dict)
    workdir: str | None = None


class PlatformSpec(OneOf):
    """One-of: exactly one platform kind is set (``platform: {command: {...}}``)."""

    label: ClassVar[str] = "platform"

    command: CommandPlatformSpec | None = None
