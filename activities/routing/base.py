"""The traffic seam: how requests reach the stable and the canary version of one service.

``TrafficRouter`` is all a router must do. Routers whose sides are lists of servers
(nginx, haproxy, nop) also take single servers in and out of rotation: that is the
optional ``ServerRotation`` capability, which a router in front of workloads (a
Kubernetes Service, Istio, Gateway API) does not have. Routers that can send requests
matching headers to the canary (ingress-nginx, Istio, Gateway API) have the optional
``HeaderRouting`` capability (Argo's ``setHeaderRoute``). One implementation per file
beside this one; ``factory.py`` picks one for a spec.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Annotated, ClassVar, Protocol, runtime_checkable

from pydantic import Field, model_validator

from activities.errors import INVALID_SPEC, failure
from activities.model import Model, OneOf


class Weights(Model):
    """Absolute traffic split in percent; always sums to 100."""

    stable: int = Field(ge=0, le=100)
    canary: int = Field(ge=0, le=100)

    @model_validator(mode="after")
    def _sums_to_100(self) -> Weights:
        if self.stable + self.canary != 100:
            raise ValueError(f"stable + canary must be 100, got {self.stable} + {self.canary}")
        return self

    @classmethod
    def canary_at(cls, canary: int) -> Weights:
        return cls(stable=100 - canary, canary=canary)


class TrafficRouter(Protocol):
    """Moves traffic between the stable and canary versions of one service.

    ``set_weights`` is declarative and idempotent: calling it twice with the same weights
    changes nothing the second time. It either applies the whole change or leaves the
    previous routing in place. ``get_weights`` is the split the router holds now.
    """

    def set_weights(self, weights: Weights) -> None: ...

    def get_weights(self) -> Weights: ...


class ServerState(StrEnum):
    """Per-server rotation state, independent of the side weights.

    READY: in rotation at the weight its side (stable or canary) has.
    DRAIN: no new requests; requests already in flight finish.
    MAINT: out of rotation.
    """

    READY = "ready"
    DRAIN = "drain"
    MAINT = "maint"


@runtime_checkable
class ServerRotation(Protocol):
    """Takes single servers of a server-list router in and out of rotation (rolling updates).

    Keys are server addresses (``host:port``) exactly as listed in the spec's ``stable`` /
    ``canary`` lists; an address not listed there is an ``InvalidSpec`` error and nothing
    changes (see :func:`merge_states`). Servers not mentioned keep their state, and states
    survive ``set_weights``: a DRAIN server stays out of rotation when its side's weight
    changes, and back at READY it takes the weight its side has then. Declarative and
    idempotent. ``get_server_states`` returns every listed server (READY unless set
    otherwise).
    """

    def set_server_states(self, states: Mapping[str, ServerState]) -> None: ...

    def get_server_states(self) -> dict[str, ServerState]: ...


def merge_states(
    current: Mapping[str, ServerState], changes: Mapping[str, ServerState], servers: list[str]
) -> dict[str, ServerState]:
    """``current`` with ``changes`` applied, for exactly ``servers``; unknown keys are refused."""
    unknown = sorted(set(changes) - set(servers))
    if unknown:
        raise failure(INVALID_SPEC, f"not a server of this router: {unknown} (servers: {servers})")
    return {s: ServerState(changes.get(s, current.get(s, ServerState.READY))) for s in servers}


HeaderName = Annotated[str, Field(pattern=r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}$")]
"""An HTTP header field name (an RFC 9110 token)."""


class HeaderValue(OneOf):
    """Argo's ``headerValue``: exactly one of ``exact``, ``prefix``, ``regex``."""

    label: ClassVar[str] = "headerValue"

    exact: str | None = Field(default=None, min_length=1, max_length=4096)
    prefix: str | None = Field(default=None, min_length=1, max_length=4096)
    regex: str | None = Field(default=None, min_length=1, max_length=4096)

    @property
    def value(self) -> str:
        chosen = self.exact or self.prefix or self.regex
        assert chosen is not None  # exactly one is set
        return chosen


class HeaderMatch(Model):
    """``{headerName: X-Canary, headerValue: {exact: "yes"}}``."""

    header_name: HeaderName
    header_value: HeaderValue


class HeaderRoute(Model):
    """A route sending every request whose headers all ``match`` to the canary, whatever the
    weights (Argo's ``setHeaderRoute`` with a ``match``)."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")]
    match: list[HeaderMatch] = Field(min_length=1)


@runtime_checkable
class HeaderRouting(Protocol):
    """Routes chosen by request headers to the canary, beside the weights.

    ``set_header_routes`` is declarative: afterwards the router holds exactly ``routes``
    (an empty list removes every header route deployflow made), in one change, or nothing
    changed. Routes it did not make are never touched. ``get_header_routes`` reads back
    the ones it holds.
    """

    def set_header_routes(self, routes: Sequence[HeaderRoute]) -> None: ...

    def get_header_routes(self) -> list[HeaderRoute]: ...
