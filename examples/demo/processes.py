"""Background processes by recorded PID: start, wait until ready (bounded), stop.

Each process gets ``.state/demo/pids/NAME.pid`` and ``.state/demo/logs/NAME.log``; it runs
in its own session so it outlives ``make`` and the terminal's Ctrl-C. Stopping signals that
PID only (after checking /proc that it is still ours), never a process name.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

HOST = "127.0.0.1"
REPO = Path(__file__).resolve().parents[2]
STATE = REPO / ".state" / "demo"
PIDS = STATE / "pids"
LOGS = STATE / "logs"
STOP_TIMEOUT_S = 10.0


class StackError(RuntimeError):
    """A component could not be started; the message says which and shows its log."""


@dataclass(frozen=True)
class Component:
    name: str
    argv: list[str]
    marker: str  # found in /proc/PID/cmdline of our process; guards against PID reuse
    ready: Callable[[], bool]
    url: str
    port: int | None = None
    env: dict[str, str] = field(default_factory=dict)
    ready_timeout_s: float = 30.0
    required: bool = True  # False: not getting ready is a warning, not a failure


def http_status(url: str, timeout: float = 1.0) -> int | None:
    """HTTP status of GET ``url``, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as e:
        return e.code
    except (OSError, ValueError):
        return None


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((HOST, port)) == 0


def pid_file(name: str) -> Path:
    return PIDS / f"{name}.pid"


def cmdline(pid: int) -> str | None:
    """The process's command line, or None where /proc is not available."""
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return None


def children(pid: int) -> set[int]:
    """PIDs of ``pid``'s child processes (empty where /proc does not list them)."""
    try:
        listed = (Path("/proc") / str(pid) / "task" / str(pid) / "children").read_text()
    except OSError:
        return set()
    return {int(child) for child in listed.split()}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):  # a zombie waiting for its parent counts as gone
        stat = (Path("/proc") / str(pid) / "stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    return True


def running_pid(name: str, marker: str | None = None) -> int | None:
    """PID recorded for ``name`` if that process still runs (and looks like ours)."""
    try:
        pid = int(pid_file(name).read_text().strip())
    except (OSError, ValueError):
        return None
    if not alive(pid):
        return None
    line = cmdline(pid)
    if marker is not None and line is not None and marker not in line:
        return None  # the PID was reused by someone else
    return pid


def log_tail(name: str, lines: int = 15) -> str:
    try:
        text = (LOGS / f"{name}.log").read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join("    " + line for line in text.splitlines()[-lines:])


def start(component: Component) -> None:
    """Start ``component`` unless it already runs; wait (bounded) until it is ready."""
    pid = running_pid(component.name, component.marker)
    if pid is not None:
        print(f"  {component.name:<12} already running (pid {pid})")
        return
    if component.port is not None and port_open(component.port):
        raise StackError(
            f"{component.name}: {HOST}:{component.port} is in use by a process this stack did "
            "not start; stop it or change the port in examples/demo/stack.py"
        )
    PIDS.mkdir(parents=True, exist_ok=True)
    LOGS.mkdir(parents=True, exist_ok=True)
    with (LOGS / f"{component.name}.log").open("ab") as log:
        process = subprocess.Popen(
            component.argv,
            cwd=REPO,
            env={**os.environ, **component.env},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # survives `make` and the terminal's Ctrl-C
        )
    pid_file(component.name).write_text(f"{process.pid}\n")
    deadline = time.monotonic() + component.ready_timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pid_file(component.name).unlink(missing_ok=True)
            raise StackError(
                f"{component.name} exited with {process.returncode}; "
                f"last lines of {LOGS / component.name}.log:\n{log_tail(component.name)}"
            )
        if component.ready():
            print(f"  {component.name:<12} started (pid {process.pid})  {component.url}")
            return
        time.sleep(0.2)
    message = f"{component.name} not ready after {component.ready_timeout_s:.0f}s"
    if not component.required:
        print(f"  {component.name:<12} started (pid {process.pid}) but {message}: see its log")
        return
    stop(component.name)
    raise StackError(f"{message}; last lines of its log:\n{log_tail(component.name)}")


def stop(name: str) -> None:
    """SIGTERM the recorded PID, wait (bounded), then SIGKILL. Only that PID, nothing else."""
    path = pid_file(name)
    if not path.exists():
        return
    pid = running_pid(name)
    if pid is None:
        path.unlink(missing_ok=True)
        print(f"  {name:<12} was not running")
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    how = "stopped"
    if alive(pid):
        os.kill(pid, signal.SIGKILL)
        how = "killed (did not stop on SIGTERM)"
        kill_deadline = time.monotonic() + 2.0
        while alive(pid) and time.monotonic() < kill_deadline:
            time.sleep(0.05)
    path.unlink(missing_ok=True)
    print(f"  {name:<12} {how} (pid {pid})")
