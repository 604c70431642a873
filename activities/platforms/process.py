"""Running one command (a platform action, a migration): own process group, bounded time,
output tail, progress.

The command gets a new session (so its process group is its own, with ID = its PID) and no
stdin. Stdout and stderr are read as they come, without a shell and without waiting for
EOF after the command exits (a daemon it started may keep the pipes open). Past the
timeout, or when an exception interrupts the wait (Temporal raises an activity's cancel
into its thread), the whole group gets SIGTERM and, two seconds later, SIGKILL.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Final, Protocol

from temporalio.exceptions import ApplicationError

from activities.errors import NON_RETRYABLE
from activities.log_fields import ms_since

OUTPUT_LINES: Final = 20
PROGRESS_INTERVAL_S = 1.0
KILL_GRACE_S = 2.0

_running: set[int] = set()
"""The process groups (their leaders' PIDs) of the commands running now."""
_running_lock = threading.Lock()


@dataclass(frozen=True)
class CommandRun:
    returncode: int
    output: list[str]  # the last OUTPUT_LINES lines of stdout and stderr, as they came
    stdout: str
    timed_out: bool
    duration_ms: float


class RunCommand(Protocol):
    """``run_command``'s signature: what the command platform runs its commands with."""

    def __call__(
        self,
        argv: Sequence[str],
        timeout_s: float,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> CommandRun: ...


def run_command(
    argv: Sequence[str],
    timeout_s: float,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> CommandRun:
    """Run ``argv`` in a new process group, calling ``progress`` every second with
    the latest output line. Past ``timeout_s``, or on any exception (an activity cancel
    raised into this thread), the whole group is killed."""
    started = time.monotonic()
    tail: deque[str] = deque(maxlen=OUTPUT_LINES)
    partial: dict[int, bytes] = {}
    stdout = bytearray()
    timed_out = False

    def read(selector: selectors.BaseSelector, fd: int, out_fd: int) -> bool:
        """Take what ``fd`` holds now; False when it has nothing more (for now or ever)."""
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            return False
        if not chunk:
            selector.unregister(fd)
            return False
        if fd == out_fd:
            stdout.extend(chunk)
        *lines, partial[fd] = (partial.get(fd, b"") + chunk).split(b"\n")
        tail.extend(_line(line) for line in lines)
        return True

    with subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=cwd,
        start_new_session=True,
    ) as proc:
        with _running_lock:
            _running.add(proc.pid)
        out_fd, err_fd = _fileno(proc.stdout), _fileno(proc.stderr)
        try:
            with selectors.DefaultSelector() as selector:
                for fd in (out_fd, err_fd):
                    os.set_blocking(fd, False)
                    selector.register(fd, selectors.EVENT_READ)
                next_progress = started + PROGRESS_INTERVAL_S
                while proc.poll() is None:
                    now = time.monotonic()
                    if now >= started + timeout_s:
                        timed_out = True
                        _kill_group(proc)
                        break
                    if progress is not None and now >= next_progress:
                        progress(tail[-1] if tail else f"{os.path.basename(argv[0])} running")
                        next_progress = now + PROGRESS_INTERVAL_S
                    if selector.get_map():
                        for key, _ in selector.select(timeout=0.1):
                            read(selector, key.fd, out_fd)
                    else:
                        with contextlib.suppress(subprocess.TimeoutExpired):
                            proc.wait(timeout=0.1)
                # A daemon the command started may hold the pipes open: take what is there.
                for key in list(selector.get_map().values()):
                    while read(selector, key.fd, out_fd):
                        pass
                tail.extend(_line(rest) for rest in partial.values() if rest)
        except BaseException:
            _kill_group(proc)
            raise
        finally:
            with _running_lock:
                _running.discard(proc.pid)
    return CommandRun(
        returncode=proc.returncode,
        output=list(tail),
        stdout=stdout.decode(errors="replace"),
        timed_out=timed_out,
        duration_ms=ms_since(started),
    )


def _fileno(stream: IO[bytes] | None) -> int:
    assert stream is not None  # Popen(stdout=PIPE, stderr=PIPE) always sets both
    return stream.fileno()


def _line(raw: bytes) -> str:
    return raw.decode(errors="replace").rstrip("\r")[:500]


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the command's own process group, SIGKILL it after a grace period.

    The leader is not reaped until the group is dead, so its PID (= the group ID) cannot be
    reused by another process meanwhile."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + KILL_GRACE_S
    with contextlib.suppress(ChildProcessError):
        while time.monotonic() < deadline and not os.waitid(
            os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT
        ):
            time.sleep(0.02)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def kill_running() -> int:
    """SIGKILL the process group of every command running now; how many there were. For a
    worker forced to exit at once, whose activity threads get no chance to: a deploy left
    running would race the retry of its activity on another worker."""
    with _running_lock:
        groups = list(_running)
    for group in groups:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
    return len(groups)


def command_failure(error_type: str, head: str, run: CommandRun | None = None) -> ApplicationError:
    """The failure ``run`` ends in: ``head`` and the last output lines as its message, the
    whole tail in its details (``{"exitCode", "timedOut", "output"}``) for the workflow;
    retryable unless ``error_type`` is listed as not (activities/errors.py)."""
    non_retryable = error_type in NON_RETRYABLE
    if run is None:
        return ApplicationError(head, type=error_type, non_retryable=non_retryable)
    last = "\n".join(run.output[-5:])
    message = (f"{head}:\n{last}" if last else head)[:2000]
    details = {"exitCode": run.returncode, "timedOut": run.timed_out, "output": run.output}
    return ApplicationError(message, details, type=error_type, non_retryable=non_retryable)
