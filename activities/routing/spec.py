"""The ``router:`` vocabulary of a spec: one model per router kind and the ``RouterSpec``
one-of. Pure pydantic, apart from the implementations, so a workflow or the CLI reads a
spec without importing subprocess, sockets or API clients.

    router:
      nginx:   {upstream: ..., configPath: ..., stable: [...], canary: [...]}
      haproxy: {backend: ..., socket: ..., configPath: ..., stable: [...], canary: [...]}
      nop:     {stable: [...], canary: [...]}     # a dry run: moves no traffic
      instances: [{name: lb-a}, {name: lb-b}]     # optional: several load balancers

and the Kubernetes routers of ``kube_spec.py`` (``service``, ``ingressNginx``, ``istio``,
``gatewayAPI``, ``replicas``).
"""

from __future__ import annotations

import os
import re
from typing import Annotated, ClassVar, Self

from pydantic import (
    AfterValidator,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from activities.model import Model, OneOf
from activities.routing.base import HeaderRoute
from activities.routing.kube_spec import (
    GatewayAPIRouterSpec,
    HeaderRouted,
    IngressNginxRouterSpec,
    IstioRouterSpec,
    ReplicasRouterSpec,
    ServiceRouterSpec,
)

# host:port where host is a DNS name, an IPv4 address or a bracketed IPv6 address. The
# character set also keeps ';', '{', '#', whitespace and quotes out of rendered configs.
_ADDRESS = re.compile(
    r"(?P<host>[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])"
    r":(?P<port>\d{1,5})"
)
CONFIG_PLACEHOLDER = "{config}"


def _check_address(address: str) -> str:
    match = _ADDRESS.fullmatch(address)
    if match is None:
        raise ValueError(f"{address!r} is not host:port")
    if not 1 <= int(match["port"]) <= 65535:
        raise ValueError(f"{address!r}: port must be 1..65535")
    return address


Address = Annotated[str, AfterValidator(_check_address)]
"""``host:port`` (``[v6]:port`` for IPv6) as router specs list their servers."""


def split_address(address: str) -> tuple[str, int]:
    """``("10.0.0.1", 80)`` from ``"10.0.0.1:80"``; IPv6 brackets removed."""
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def _check_absolute_path(value: str) -> str:
    if not os.path.isabs(value) or any(c in value for c in "\n\r\0"):
        raise ValueError(f"{value!r} must be an absolute file path")
    return value


AbsolutePath = Annotated[str, AfterValidator(_check_absolute_path)]
"""A config or socket path: absolute, and safe to write into a config line."""


def _name_like(pattern: str, what: str) -> AfterValidator:
    """Validator: the whole value matches ``pattern``, else it is not ``what``."""
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise ValueError(f"{value!r} is not {what}")
        return value

    return AfterValidator(check)


UpstreamName = Annotated[
    str,
    _name_like(
        r"[A-Za-z_][A-Za-z0-9_.-]{0,127}", "an nginx upstream name ([A-Za-z_][A-Za-z0-9_.-]*)"
    ),
]
BackendName = Annotated[
    str, _name_like(r"[A-Za-z0-9_.:-]{1,100}", "an HAProxy backend name ([A-Za-z0-9_.:-]+)")
]


def _check_unique_sides(stable: list[str], canary: list[str]) -> list[str]:
    """Validator for a spec's ``canary`` list: no duplicates, nothing also in ``stable``."""
    shared = set(canary) & set(stable)
    if shared:
        raise ValueError(f"{sorted(shared)} also listed in stable")
    if len(set(canary)) != len(canary):
        raise ValueError(f"duplicate address in {canary}")
    return canary


class ServerPools(Model):
    """The two server lists of a server-list router: ``stable`` and ``canary``, each at
    least one ``host:port``, no address twice. The base of every such router's spec."""

    stable: list[Address] = Field(min_length=1)
    canary: list[Address] = Field(min_length=1)

    @field_validator("stable")
    @classmethod
    def _stable_unique(cls, value: list[str]) -> list[str]:
        return _check_unique_sides([], value)

    @field_validator("canary")
    @classmethod
    def _canary_unique(cls, value: list[str], info: ValidationInfo) -> list[str]:
        return _check_unique_sides(info.data.get("stable", []), value)

    @property
    def servers(self) -> list[str]:
        """Every server, stable list first."""
        return [*self.stable, *self.canary]


class NginxRouterSpec(ServerPools):
    """Where the router-owned upstream file lives, which servers it lists, how to apply it."""

    upstream: UpstreamName
    config_path: AbsolutePath
    test_command: list[str] = Field(default=["nginx", "-t"], min_length=1)
    reload_command: list[str] = Field(default=["nginx", "-s", "reload"], min_length=1)


class HAProxyRouterSpec(ServerPools):
    """The backend the router owns, its admin socket and file, and how to check/reload."""

    backend: BackendName
    socket: AbsolutePath
    config_path: AbsolutePath
    check_command: list[str] | None = Field(
        default=["haproxy", "-c", "-f", "/etc/haproxy/haproxy.cfg", "-f", CONFIG_PLACEHOLDER],
        min_length=1,
    )
    reload_command: list[str] | None = Field(default=None, min_length=1)

    @field_validator("check_command")
    @classmethod
    def _has_placeholder(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and CONFIG_PLACEHOLDER not in value:
            raise ValueError(f"must contain {CONFIG_PLACEHOLDER!r} where the candidate file goes")
        return value

    @property
    def names(self) -> dict[str, str]:
        """Server name per address: ``stable-1`` ... ``canary-1`` ... in list order."""
        return server_names(self.stable, self.canary)


def server_names(stable: list[str], canary: list[str]) -> dict[str, str]:
    """HAProxy server names, ``{address: name}``, by side and 1-based position."""
    named = {a: f"stable-{i}" for i, a in enumerate(stable, 1)}
    return named | {a: f"canary-{i}" for i, a in enumerate(canary, 1)}


class NopRouterSpec(ServerPools):
    """A dry run: the server lists a rollout would route between; nothing is touched."""


AGENT_QUEUE_PREFIX = "deployflow-router-"
InstanceName = Annotated[
    str,
    _name_like(
        r"[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?",
        "a host name (lowercase letters, digits, '-' and '.', at most 63)",
    ),
]
TaskQueueName = Annotated[str, _name_like(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,199}", "a task queue")]
# What may differ between the hosts of one router: the files and commands on each host.
HOST_FIELDS = {
    "nginx": ("config_path", "test_command", "reload_command"),
    "haproxy": ("socket", "config_path", "check_command", "reload_command"),
    "nop": (),
}


def agent_queue(name: str) -> str:
    """The task queue ``deployflow worker --host NAME`` polls: ``deployflow-router-NAME``."""
    return AGENT_QUEUE_PREFIX + name


class RouterInstance(Model):
    """One load balancer of a router: the host whose agent (``deployflow worker --host
    NAME``) applies the router there, and what differs on that host (its files, commands)."""

    name: InstanceName
    task_queue: TaskQueueName | None = Field(default=None, exclude_if=lambda v: v is None)
    config_path: AbsolutePath | None = Field(default=None, exclude_if=lambda v: v is None)
    socket: AbsolutePath | None = Field(default=None, exclude_if=lambda v: v is None)
    test_command: list[str] | None = Field(
        default=None, min_length=1, exclude_if=lambda v: v is None
    )
    check_command: list[str] | None = Field(
        default=None, min_length=1, exclude_if=lambda v: v is None
    )
    reload_command: list[str] | None = Field(
        default=None, min_length=1, exclude_if=lambda v: v is None
    )

    @property
    def queue(self) -> str:
        return self.task_queue or agent_queue(self.name)

    def host_fields(self) -> dict[str, object]:
        """The router fields this host sets for itself (snake_case names)."""
        names = {n for fields in HOST_FIELDS.values() for n in fields}
        return {n: getattr(self, n) for n in sorted(names) if getattr(self, n) is not None}


def _check_instances(instances: list[RouterInstance]) -> list[RouterInstance]:
    for what, values in (
        ("name", [i.name for i in instances]),
        ("task queue", [i.queue for i in instances]),
    ):
        seen: dict[str, int] = {}
        for index, value in enumerate(values):
            if value in seen:
                raise ValueError(
                    f"instances[{index}] has the {what} {value!r} of instances[{seen[value]}]: "
                    "each load balancer is listed once, with its own agent's task queue"
                )
            seen[value] = index
    return instances


class RouterSpec(OneOf):
    """One-of: exactly one router kind is set (``router: {nginx: {...}}``), and optionally
    the load balancers it runs on (``instances``: each host's agent applies it there)."""

    label: ClassVar[str] = "router"
    besides: ClassVar[frozenset[str]] = frozenset({"instances"})

    nginx: NginxRouterSpec | None = None
    haproxy: HAProxyRouterSpec | None = None
    nop: NopRouterSpec | None = None
    service: ServiceRouterSpec | None = None
    ingress_nginx: IngressNginxRouterSpec | None = None
    istio: IstioRouterSpec | None = None
    gateway_api: GatewayAPIRouterSpec | None = Field(default=None, alias="gatewayAPI")
    replicas: ReplicasRouterSpec | None = None
    instances: (
        Annotated[list[RouterInstance], Field(min_length=1), AfterValidator(_check_instances)]
        | None
    ) = Field(default=None, exclude_if=lambda v: v is None)

    @model_validator(mode="after")
    def _instances_fit_kind(self) -> Self:
        if not self.instances:
            return self
        if self.kind not in HOST_FIELDS:
            raise ValueError(
                f"instances: router {self.kind} is reached through its API, not on load-"
                f"balancer hosts; only {', '.join(HOST_FIELDS)} routers take instances"
            )
        allowed = HOST_FIELDS[self.kind]
        for index, instance in enumerate(self.instances):
            for name in instance.host_fields():
                if name not in allowed:
                    takes = ", ".join(RouterInstance.model_fields[n].alias or n for n in allowed)
                    raise ValueError(
                        f"instances[{index}].{RouterInstance.model_fields[name].alias}: a "
                        f"{self.kind} router has no such field on a host "
                        f"(it takes {takes or 'none'})"
                    )
            try:
                self._on(instance)
            except ValidationError as exc:
                why = "; ".join(validation_messages(exc))
                raise ValueError(f"instances[{index}]: {why}") from None
        return self

    def on_instances(self) -> list[tuple[RouterInstance, RouterSpec]]:
        """Each instance with the router its agent applies: this spec with the host's own
        fields, and no instances. Empty when the router names none (the worker applies it)."""
        return [(instance, self._on(instance)) for instance in self.instances or []]

    def _on(self, instance: RouterInstance) -> RouterSpec:
        chosen = self.selected()
        field = next(n for n in self._kinds() if getattr(self, n) is not None)
        merged = chosen.model_dump() | _aliased(instance)
        return RouterSpec.model_validate({field: type(chosen).model_validate(merged)})

    def pools(self) -> ServerPools | None:
        """The stable and canary server lists, for routers that route to servers (nginx,
        haproxy, nop); None for a router in front of workloads (a Kubernetes Service, Istio)."""
        chosen = self.selected()
        return chosen if isinstance(chosen, ServerPools) else None

    @property
    def splits(self) -> bool:
        """Whether the router can split traffic (a Service selector only switches it)."""
        return not isinstance(self.selected(), ServiceRouterSpec)

    def header_routes_problem(self, routes: list[HeaderRoute]) -> str | None:
        """Why this router cannot hold the header ``routes`` at once (``setHeaderRoute``);
        None when it can."""
        chosen = self.selected()
        if not isinstance(chosen, HeaderRouted):
            return f"router {self.kind} cannot route by header (setHeaderRoute)"
        return chosen.header_routes_problem(routes)


def _aliased(instance: RouterInstance) -> dict[str, object]:
    fields = RouterInstance.model_fields
    return {fields[n].alias or n: v for n, v in instance.host_fields().items()}


def validation_messages(error: ValidationError) -> list[str]:
    """``field: message`` for each problem pydantic found (for a message inside another)."""
    return [
        f"{'.'.join(str(p) for p in e['loc'])}: {e['msg'].removeprefix('Value error, ')}"
        for e in error.errors()
    ]
