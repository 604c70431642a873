"""The router-owned file: what the file-owning routers (nginx, haproxy) share.

Each owns one config file it rewrites atomically, one writer at a time, and whose first
lines record what deployflow last set (the split, the servers out of rotation) so it reads
back as it was written. Changes are checked and applied with the server's own commands.
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
from pathlib import Path

import structlog

from activities.errors import ROUTER_COMMAND_FAILED, failure
from activities.log_fields import ms_since
from activities.routing.base import ServerState, Weights

log = structlog.get_logger()

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


def header_lines(weights: Weights, states: Mapping[str, ServerState]) -> list[str]:
    """The lines a router-owned file starts with: the split, then any non-ready servers."""
    states_line = render_states_line(states)
    return [render_weights_line(weights), *([states_line] if states_line is not None else [])]


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


def restore(path: Path, previous: str | None) -> None:
    """Put ``previous`` back at ``path`` (None: there was no file, so remove it)."""
    if previous is None:
        path.unlink(missing_ok=True)
    else:
        write_atomically(path, previous)


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
    duration_ms = ms_since(started)
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
