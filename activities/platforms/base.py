"""The platform seam: how a version gets onto a host. One Protocol, one implementation per file."""

from __future__ import annotations

import re
from typing import Literal, Protocol

from pydantic import Field

from activities.model import Model

Action = Literal["deploy", "start", "stop", "restart"]

# A DNS name, an IPv4 address or a bracketed IPv6 address. A host never starts with '-', so
# a target cannot turn into an option of the command it is templated into (``ssh -oProxy…``).
_ADDRESS = re.compile(
    r"(?P<host>[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])"
    r":(?P<port>\d{1,5})"
)


class Target(Model):
    """One place a version runs: a VM (or, in the demo, one port on 127.0.0.1)."""

    host: str
    port: int = Field(ge=1, le=65535)

    @classmethod
    def parse(cls, address: str) -> Target:
        """``"127.0.0.1:18001"`` or ``"[::1]:8080"``; ``ValueError`` for anything else."""
        match = _ADDRESS.fullmatch(address)
        if match is None:
            raise ValueError(f"{address!r} is not host:port")
        port = int(match["port"])
        if not 1 <= port <= 65535:
            raise ValueError(f"{address!r}: port must be 1..65535")
        return cls(host=match["host"], port=port)

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


class ActionResult(Model):
    """What one platform action did; ``changed`` is False when the target already matched."""

    action: Action
    target: str
    changed: bool
    output: list[str] = Field(default_factory=list)  # last lines of stdout + stderr
    duration_ms: float


class Platform(Protocol):
    """Runs versions of one service on targets.

    Every action is declarative and safe to retry: ``deploy(t, "v2")`` twice leaves ``v2``
    running and reports ``changed=False`` the second time when the platform can tell.
    ``current`` is the version running on the target, or None when nothing runs there.
    """

    def deploy(self, target: Target, version: str) -> ActionResult: ...

    def start(self, target: Target) -> ActionResult: ...

    def stop(self, target: Target) -> ActionResult: ...

    def restart(self, target: Target) -> ActionResult: ...

    def current(self, target: Target) -> str | None: ...
