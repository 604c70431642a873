"""The traffic-router seam: one Protocol, one implementation per file beside it.

Also the vocabulary every router shares: ``Weights``, ``ServerState``, the ``Address`` type
of spec server lists, and the small file helpers the file-owning routers (nginx, haproxy)
use to rewrite their config atomically, one writer per file.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Protocol

import structlog
from pydantic import AfterValidator, Field, model_validator

from activities.errors import INVALID_SPEC, ROUTER_COMMAND_FAILED, failure
from activities.model import Model

log = structlog.get_logger()


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


class ServerState(StrEnum):
    """Per-server rotation state, independent of the side weights.

    READY: in rotation at the weight its side (stable or canary) has.
    DRAIN: no new requests; requests already in flight finish.
    MAINT: out of rotation.
    """

    READY = "ready"
    DRAIN = "drain"
    MAINT = "maint"


class TrafficRouter(Protocol):
    """Moves traffic between the stable and canary versions of one service.

    ``set_weights`` is declarative and idempotent: calling it twice with the same weights
    changes nothing the second time. It either applies the whole change or leaves the
    previous routing in place.

    ``set_server_states`` takes single servers in and out of rotation (rolling updates):
    keys are server addresses (``host:port``) exactly as listed in the spec's ``stable`` /
    ``canary`` lists; an address not listed there is an ``InvalidSpec`` error and nothing
    changes. Servers not mentioned keep their state, and states survive ``set_weights``:
    a DRAIN server stays out of rotation when its side's weight changes, and back at READY
    it takes the weight its side has then. Also declarative and idempotent.
    ``get_server_states`` returns every listed server (READY unless set otherwise).
    """

    def set_weights(self, weights: Weights) -> None: ...

    def get_weights(self) -> Weights: ...

    def set_server_states(self, states: Mapping[str, ServerState]) -> None: ...

    def get_server_states(self) -> dict[str, ServerState]: ...


# host:port where host is a DNS name, an IPv4 address or a bracketed IPv6 address. The
# character set also keeps ';', '{', '#', whitespace and quotes out of rendered configs.
_ADDRESS = re.compile(
    r"(?P<host>[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])"
    r":(?P<port>\d{1,5})"
)


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


def check_absolute_path(value: str) -> str:
    """Validator for config/socket paths: absolute, and safe to write into a config line."""
    if not os.path.isabs(value) or any(c in value for c in "\n\r\0"):
        raise ValueError(f"{value!r} must be an absolute file path")
    return value


def check_unique_sides(stable: list[str], canary: list[str]) -> list[str]:
    """Validator for a spec's ``canary`` list: no duplicates, nothing also in ``stable``."""
    shared = set(canary) & set(stable)
    if shared:
        raise ValueError(f"{sorted(shared)} also listed in stable")
    if len(set(canary)) != len(canary):
        raise ValueError(f"duplicate address in {canary}")
    return canary


def merge_states(
    current: Mapping[str, ServerState], changes: Mapping[str, ServerState], servers: list[str]
) -> dict[str, ServerState]:
    """``current`` with ``changes`` applied, for exactly ``servers``; unknown keys are refused."""
    unknown = sorted(set(changes) - set(servers))
    if unknown:
        raise failure(INVALID_SPEC, f"not a server of this router: {unknown} (servers: {servers})")
    return {s: ServerState(changes.get(s, current.get(s, ServerState.READY))) for s in servers}


_WEIGHTS_LINE = re.compile(r"# deployflow: stable=(?P<stable>\d{1,3}) canary=(?P<canary>\d{1,3})")
_STATES_PREFIX = "# deployflow-servers:"


def render_weights_line(weights: Weights) -> str:
    """First line of a router-owned file: the split deployflow last set, read back as is."""
    return f"# deployflow: stable={weights.stable} canary={weights.canary}"


def parse_weights_line(content: str) -> Weights | None:
    """Weights from a file starting with :func:`render_weights_line`, or None."""
    match = _WEIGHTS_LINE.fullmatch(content.split("\n", 1)[0])
    if match is None:
        return None
    return Weights(stable=int(match["stable"]), canary=int(match["canary"]))


def render_states_line(states: Mapping[str, ServerState]) -> str | None:
    """Header line recording non-ready servers (``# deployflow-servers: a:1=drain``), or None."""
    marked = [f"{address}={state}" for address, state in states.items() if state != "ready"]
    return f"{_STATES_PREFIX} {' '.join(marked)}" if marked else None


def parse_states_line(content: str) -> dict[str, ServerState]:
    """Non-ready servers recorded by :func:`render_states_line` in a file's header."""
    for line in content.splitlines():
        if not line.startswith("#"):
            break
        if line.startswith(_STATES_PREFIX):
            pairs = (item.rpartition("=") for item in line[len(_STATES_PREFIX) :].split())
            return {address: ServerState(state) for address, _, state in pairs}
    return {}


# One worker runs activities on a thread pool: keep each router-owned file's
# read/write/apply/restore serial.
_path_locks: dict[str, threading.Lock] = {}
_path_locks_guard = threading.Lock()


def lock_for(path: Path) -> threading.Lock:
    """The process-wide lock for the router-owned file at ``path``."""
    with _path_locks_guard:
        return _path_locks.setdefault(str(path), threading.Lock())


def read_file(path: Path) -> str | None:
    try:
        return path.read_text()
    except FileNotFoundError:
        return None


def write_atomically(path: Path, content: str) -> None:
    """Temp file in the same directory + ``os.replace``: readers never see half a file.

    The ``.tmp`` suffix keeps the temp file out of ``include conf.d/*.conf`` globs.
    """
    try:
        mode = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = 0o644
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(content)
            f.flush()
            os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


COMMAND_TIMEOUT_S = 30.0
_MAX_MESSAGE = 2000


def run_command(router: str, step: str, command: list[str], error_type: str) -> None:
    """Run ``command``; a non-zero exit raises ``error_type`` with the tool's own message.

    A timeout or a command that cannot start is retryable ``RouterCommandFailed``.
    """
    started = time.monotonic()
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        raise failure(
            ROUTER_COMMAND_FAILED,
            f"{router} {step}: {command} timed out after {COMMAND_TIMEOUT_S}s",
        ) from None
    except OSError as e:
        raise failure(ROUTER_COMMAND_FAILED, f"{router} {step}: cannot run {command}: {e}") from e
    duration_ms = round((time.monotonic() - started) * 1000, 1)
    if result.returncode != 0:
        message = (result.stderr.strip() or result.stdout.strip())[-_MAX_MESSAGE:]
        log.warning(
            "router_command_failed",
            router=router,
            step=step,
            returncode=result.returncode,
            duration_ms=duration_ms,
            message=message,
        )
        raise failure(error_type, message or f"{router} {step} exited {result.returncode}")
    log.debug("router_command_ok", router=router, step=step, duration_ms=duration_ms)
