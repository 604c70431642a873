"""Health checks and smoke tests as users write them, in Kubernetes probe vocabulary.

```yaml
healthCheck:
  http: {path: /healthz, expectedStatus: 200}    # or tcp: {}, exec: {command: [...]}, grpc: {}
  initialDelaySeconds: 2
  periodSeconds: 1
  failureThreshold: 3
smokeTests:
  - {name: checkout, path: /checkout, bodyContains: ok}
```

A check's ``port`` left out means the target's own port (``host:port`` given by the
workflow). Exec commands run on the worker, with ``{host}`` and ``{port}`` filled in.
"""

from __future__ import annotations

import re
import string
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from activities.model import Model, PositiveSeconds, Seconds

EXEC_PLACEHOLDERS = ("host", "port")

PortNumber = Annotated[int, Field(ge=1, le=65535)]
HttpStatus = Annotated[int, Field(ge=100, le=599)]
# Outcomes in a row that decide; the probing budget is a multiple of their sum.
Threshold = Annotated[int, Field(ge=1, le=100)]


def _absolute_path(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError(f"must start with '/', got {value!r}")
    return value


class HttpCheck(Model):
    """Healthy when ``GET scheme://host:port{path}`` answers ``expectedStatus``.

    Like Kubernetes, redirects are not followed and an https certificate is not verified
    (targets are addressed by IP; the check is about liveness, not identity).
    """

    path: str = "/healthz"
    port: PortNumber | None = None
    scheme: Literal["http", "https"] = "http"
    expected_status: HttpStatus = 200

    _path = field_validator("path")(_absolute_path)


class TcpCheck(Model):
    """Healthy when a TCP connection to the port is accepted."""

    port: PortNumber | None = None


class ExecCheck(Model):
    """Healthy when the command exits 0. It runs on the worker, not on the target, so it
    reaches the target through the placeholders: ``[ssh, "{host}", systemctl, is-active, app]``.
    """

    command: list[str] = Field(min_length=1)

    @field_validator("command")
    @classmethod
    def _known_placeholders(cls, command: list[str]) -> list[str]:
        allowed = ", ".join(f"{{{name}}}" for name in EXEC_PLACEHOLDERS)
        literal = "write {{ and }} for literal braces"
        for i, arg in enumerate(command):
            try:
                fields = [f for _, f, _, _ in string.Formatter().parse(arg) if f is not None]
            except ValueError as e:
                raise ValueError(f"command[{i}] {arg!r}: {e}; {literal}") from e
            for field in fields:
                if field not in EXEC_PLACEHOLDERS:
                    raise ValueError(
                        f"command[{i}] {arg!r}: unknown placeholder {{{field}}};"
                        f" use {allowed} ({literal})"
                    )
        return command

    def render(self, host: str, port: int) -> list[str]:
        """The command with ``{host}`` and ``{port}`` filled in."""
        return [arg.format(host=host, port=port) for arg in self.command]


class GrpcCheck(Model):
    """Healthy when ``grpc.health.v1.Health/Check`` answers SERVING for ``service``
    (``""`` asks about the server as a whole)."""

    port: PortNumber | None = None
    service: str = ""


ProbeKind = Literal["http", "tcp", "exec", "grpc"]
PROBE_KINDS: tuple[ProbeKind, ...] = ("http", "tcp", "exec", "grpc")


class HealthCheck(Model):
    """One probe kind plus when to probe and how many outcomes in a row decide.

    Healthy after ``successThreshold`` consecutive successes, unhealthy after
    ``failureThreshold`` consecutive failures (Kubernetes semantics).
    """

    http: HttpCheck | None = None
    tcp: TcpCheck | None = None
    exec: ExecCheck | None = None
    grpc: GrpcCheck | None = None
    initial_delay_seconds: Seconds = 0
    period_seconds: PositiveSeconds = 10
    timeout_seconds: PositiveSeconds = 1
    failure_threshold: Threshold = 3
    success_threshold: Threshold = 1

    @model_validator(mode="after")
    def _exactly_one_kind(self) -> HealthCheck:
        chosen = [kind for kind in PROBE_KINDS if getattr(self, kind) is not None]
        if len(chosen) != 1:
            got = ", ".join(chosen) or "none"
            raise ValueError(f"set exactly one of {', '.join(PROBE_KINDS)}; got {got}")
        return self

    @property
    def kind(self) -> ProbeKind:
        """Which probe kind is set, e.g. ``"http"``."""
        return next(kind for kind in PROBE_KINDS if getattr(self, kind) is not None)


_METHOD = re.compile(r"[A-Z]+")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an RFC 9110 token


class SmokeTest(Model):
    """One request against the new version; passes on ``expectedStatus`` (and
    ``bodyContains``, when set). Redirects are not followed; https is verified."""

    # Header values may be tokens: validation errors must not echo the input.
    model_config = ConfigDict(hide_input_in_errors=True)

    name: str = Field(min_length=1)
    path: str = "/"
    method: str = "GET"
    expected_status: HttpStatus = 200
    body_contains: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    timeout_seconds: PositiveSeconds = 5

    _path = field_validator("path")(_absolute_path)

    @field_validator("method")
    @classmethod
    def _http_method(cls, value: str) -> str:
        method = value.strip().upper()
        if not _METHOD.fullmatch(method):
            raise ValueError(f"must be an HTTP method like GET or POST, got {value!r}")
        return method

    @field_validator("headers")
    @classmethod
    def _valid_headers(cls, headers: dict[str, str]) -> dict[str, str]:
        for name, value in headers.items():
            if not _HEADER_NAME.fullmatch(name):
                raise ValueError(f"{name!r} is not a valid header name")
            if any(c in value for c in "\r\n\0"):
                raise ValueError(f"the value of {name} must not contain line breaks or NUL")
        return headers
