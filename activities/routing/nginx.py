"""NGINX router: owns one file holding one ``upstream`` block, shifts traffic by weights.

A change is rendered, written atomically, checked with ``nginx -t`` and only then applied
with ``nginx -s reload``. A rejected config or a failed reload puts the previous file back,
so the file always matches what nginx was last told to run and a retry re-applies the
change instead of finding "identical content" and skipping the reload.

Weights are per side: every server of a side gets that side's percentage as its NGINX
``weight``. With equal server counts on both sides that is exactly the requested split;
with unequal counts the split is by total weight (2 stable servers at 95 and 1 canary at
5 send 5/195 of requests to the canary). NGINX's minimum weight is 1, so a side at 0 %
keeps its servers listed but marked ``down``.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Annotated

import structlog
from pydantic import AfterValidator, Field, ValidationInfo, field_validator

from activities.errors import INVALID_SPEC, ROUTER_COMMAND_FAILED, ROUTER_CONFIG_REJECTED, failure
from activities.model import Model
from activities.routing.base import Weights

log = structlog.get_logger()

COMMAND_TIMEOUT_S = 30.0
_MAX_MESSAGE = 2000

_UPSTREAM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,127}")
# host:port where host is a DNS name, an IPv4 address or a bracketed IPv6 address. The
# character set also keeps ';', '{', whitespace and quotes out of the rendered config.
_ADDRESS = re.compile(
    r"(?P<host>[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])"
    r":(?P<port>\d{1,5})"
)
_HEADER = re.compile(r"# deployflow: stable=(?P<stable>\d{1,3}) canary=(?P<canary>\d{1,3})")


def _check_address(address: str) -> str:
    match = _ADDRESS.fullmatch(address)
    if match is None:
        raise ValueError(f"{address!r} is not host:port")
    if not 1 <= int(match["port"]) <= 65535:
        raise ValueError(f"{address!r}: port must be 1..65535")
    return address


Address = Annotated[str, AfterValidator(_check_address)]


class NginxRouterSpec(Model):
    """Where the router-owned upstream file lives, which servers it lists, how to apply it."""

    upstream: str
    config_path: str
    stable: list[Address] = Field(min_length=1)
    canary: list[Address] = Field(min_length=1)
    test_command: list[str] = Field(default=["nginx", "-t"], min_length=1)
    reload_command: list[str] = Field(default=["nginx", "-s", "reload"], min_length=1)

    @field_validator("upstream")
    @classmethod
    def _nginx_identifier(cls, value: str) -> str:
        if not _UPSTREAM_NAME.fullmatch(value):
            raise ValueError(f"{value!r} is not an nginx upstream name ([A-Za-z_][A-Za-z0-9_.-]*)")
        return value

    @field_validator("config_path")
    @classmethod
    def _absolute_path(cls, value: str) -> str:
        if not os.path.isabs(value) or any(c in value for c in "\n\r\0"):
            raise ValueError(f"{value!r} must be an absolute file path")
        return value

    @field_validator("stable")
    @classmethod
    def _stable_unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError(f"duplicate address in {value}")
        return value

    @field_validator("canary")
    @classmethod
    def _canary_unique(cls, value: list[str], info: ValidationInfo) -> list[str]:
        shared = set(value) & set(info.data.get("stable", []))
        if shared:
            raise ValueError(f"{sorted(shared)} also listed in stable")
        if len(set(value)) != len(value):
            raise ValueError(f"duplicate address in {value}")
        return value


def render_upstream(upstream: str, stable: list[str], canary: list[str], weights: Weights) -> str:
    """The complete upstream file for ``weights``; the header line is what is read back.

    Each server's weight is its side's percentage times the other side's server count, so
    the split holds however many servers each side has (2 stable + 1 canary at 5 % is
    ``95*1`` per stable server and ``5*2`` for the canary: 10/200 = 5 %),.
    """
    per_server = {"stable": weights.stable * len(canary), "canary": weights.canary * len(stable)}
    lines = [
        f"# deployflow: stable={weights.stable} canary={weights.canary}",
        "# Managed by deployflow: rewritten on every traffic shift, do not edit.",
        f"upstream {upstream} {{",
    ]
    for servers, side in ((stable, "stable"), (canary, "canary")):
        weight = per_server[side]
        for address in servers:
            state = f"weight={weight}" if weight > 0 else "down"
            lines.append(f"    server {address} {state};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def parse_weights(content: str) -> Weights | None:
    """Weights from a file written by :func:`render_upstream`, or None if it is not one."""
    first_line = content.split("\n", 1)[0]
    match = _HEADER.fullmatch(first_line)
    if match is None:
        return None
    return Weights(stable=int(match["stable"]), canary=int(match["canary"]))


# One worker runs activities on a thread pool: keep write/test/restore of one file serial.
_path_locks: dict[str, threading.Lock] = {}
_path_locks_guard = threading.Lock()


def _lock_for(path: Path) -> threading.Lock:
    with _path_locks_guard:
        return _path_locks.setdefault(str(path), threading.Lock())


class NginxRouter:
    """TrafficRouter over an nginx upstream file plus ``nginx -t`` / ``nginx -s reload``."""

    def __init__(self, spec: NginxRouterSpec) -> None:
        self.spec = spec
        self.path = Path(spec.config_path)

    def set_weights(self, weights: Weights) -> None:
        """Apply ``weights``; no-op if the file already says exactly this."""
        content = render_upstream(self.spec.upstream, self.spec.stable, self.spec.canary, weights)
        with _lock_for(self.path):
            previous = self._read()
            if previous == content:
                log.info("nginx_weights_unchanged", path=str(self.path), **weights.model_dump())
                return
            self._write(content)
            try:
                self._run("test", self.spec.test_command, ROUTER_CONFIG_REJECTED)
                self._run("reload", self.spec.reload_command, ROUTER_COMMAND_FAILED)
            except BaseException:
                self._restore(previous)
                raise
        log.info("nginx_weights_set", path=str(self.path), **weights.model_dump())

    def get_weights(self) -> Weights:
        """Weights in the file; 100 % stable if this router has never written it."""
        content = self._read()
        if content is None:
            return Weights(stable=100, canary=0)
        weights = parse_weights(content)
        if weights is None:
            raise failure(
                INVALID_SPEC,
                f"{self.path} has no '# deployflow:' header: not written by deployflow",
            )
        return weights

    def _read(self) -> str | None:
        try:
            return self.path.read_text()
        except FileNotFoundError:
            return None

    def _write(self, content: str) -> None:
        """Temp file in the same directory + ``os.replace``: nginx never reads half a file."""
        try:
            mode = self.path.stat().st_mode & 0o7777
        except FileNotFoundError:
            mode = 0o644
        # The suffix keeps the temp file out of ``include conf.d/*.conf`` globs.
        fd, tmp = tempfile.mkstemp(
            dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp"
        )
        try:
            with os.fdopen(fd, "w") as f:
                f.write(content)
                f.flush()
                os.fchmod(f.fileno(), mode)
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def _restore(self, previous: str | None) -> None:
        if previous is None:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
        else:
            self._write(previous)
        log.warning("nginx_config_restored", path=str(self.path), removed=previous is None)

    def _run(self, step: str, command: list[str], error_type: str) -> None:
        """Run ``command``; a non-zero exit raises ``error_type`` with nginx's own message."""
        started = time.monotonic()
        try:
            result = subprocess.run(
                command, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, check=False
            )
        except subprocess.TimeoutExpired:
            raise failure(
                ROUTER_COMMAND_FAILED,
                f"nginx {step}: {command} timed out after {COMMAND_TIMEOUT_S}s",
            ) from None
        except OSError as e:
            raise failure(ROUTER_COMMAND_FAILED, f"nginx {step}: cannot run {command}: {e}") from e
        duration_ms = round((time.monotonic() - started) * 1000, 1)
        if result.returncode != 0:
            message = (result.stderr.strip() or result.stdout.strip())[-_MAX_MESSAGE:]
            log.warning(
                "nginx_command_failed",
                step=step,
                returncode=result.returncode,
                duration_ms=duration_ms,
                message=message,
            )
            raise failure(error_type, message or f"nginx {step} exited {result.returncode}")
        log.debug("nginx_command_ok", step=step, duration_ms=duration_ms)
