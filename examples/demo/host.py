"""A local host agent: one 127.0.0.1 port plays the part of one VM for the command platform.

    python examples/demo/host.py deploy --port 18001 --version v2 [--service checkout]
                                        [--error-rate 0] [--broken-version V ...]
                                        [--state-dir DIR]
    python examples/demo/host.py start|stop|restart --port 18001
    python examples/demo/host.py current --port 18001   # prints the version; exit 3 if none

``deploy`` records the release (service, version, error rate), stops the other release this
agent runs on the port and starts examples/demo_service.py there in the background, then
waits (bounded) until ``/healthz`` answers; a port held by anything else is an error. Every
verb is idempotent: deploying the release that already answers, starting a running port or
stopping a stopped one changes nothing.

``--broken-version V`` (repeatable) plays a bad build: deploying V runs it with error rate
1.0, so it passes ``/healthz`` but answers 500 on ``/``; any other version gets
``--error-rate``. Because it is keyed on the version, a rollback that redeploys the
previous version with the same command template gets a healthy one.

Per port, in ``--state-dir`` (default .state/demo/hosts): ``PORT.json`` the release
(what ``start`` runs), ``PORT.pid`` the PID running it, ``PORT.log`` its output. Stopping
signals that PID only, after /proc shows it is still demo_service.py on this port (SIGTERM,
bounded wait, SIGKILL). Exit codes: 0 done, 1 failed, 2 usage or nothing deployed on the port,
3 (``current``) nothing runs. A command platform drives it like this (paths relative to
the repo root: run the worker there or set ``workdir``):

    deploy:  [python, examples/demo/host.py, deploy, --port, "{port}", --version, "{version}",
              --service, "{service}"]
    current: [python, examples/demo/host.py, current, --port, "{port}"]
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from itertools import pairwise
from pathlib import Path

from processes import HOST, REPO, STATE, alive, http_status, port_open

SERVICE_SCRIPT = REPO / "examples" / "demo_service.py"
READY_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
NOT_RUNNING = 3
NOTHING_DEPLOYED = 2


class HostError(RuntimeError):
    """The verb failed; the message says why (exit 1)."""


class NothingDeployed(HostError):
    """``start`` or ``restart`` on a port that was never deployed to (exit 2)."""


@dataclass(frozen=True)
class Release:
    service: str
    version: str
    error_rate: float

    def argv(self, port: int) -> list[str]:
        return [
            sys.executable,
            str(SERVICE_SCRIPT),
            "--host",
            HOST,
            "--port",
            str(port),
            "--service",
            self.service,
            "--version",
            self.version,
            "--error-rate",
            str(self.error_rate),
        ]

    @classmethod
    def from_argv(cls, argv: list[str]) -> Release | None:
        """The release a demo_service.py command line runs, or None if it is not one."""
        try:
            flags = dict(pairwise(argv))  # each flag -> the word after it
            return cls(flags["--service"], flags["--version"], float(flags["--error-rate"]))
        except (KeyError, ValueError):
            return None


class Host:
    """The demo service slot on one port, with its state files."""

    def __init__(self, state_dir: Path, port: int) -> None:
        self.port = port
        self.record = state_dir / f"{port}.json"
        self.pid_file = state_dir / f"{port}.pid"
        self.log = state_dir / f"{port}.log"
        self.where = f"{HOST}:{port}"

    def deployed(self) -> Release | None:
        try:
            return Release(**json.loads(self.record.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def running(self) -> tuple[int, Release | None] | None:
        """PID and release of the recorded process, if it is alive and still ours."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        if not alive(pid):
            return None
        argv = _cmdline(pid)
        if argv is None:  # no /proc: trust the record
            return pid, self.deployed()
        ours = len(argv) > 1 and Path(argv[1]).name == SERVICE_SCRIPT.name
        if not ours or ("--port", str(self.port)) not in pairwise(argv):
            return None  # the PID now belongs to another process
        return pid, Release.from_argv(argv)

    def healthy(self) -> bool:
        return http_status(f"http://{self.where}/healthz") == 200

    def deploy(self, release: Release) -> None:
        self.record.write_text(json.dumps(asdict(release)) + "\n")
        now = self.running()
        if now is not None and now[1] == release and self.healthy():
            print(f"{release.service} {release.version} already running on {self.where}")
            return
        self.stop()
        self.launch(release)

    def start(self) -> None:
        if self.running() is not None:
            print(f"already running on {self.where}")
            return
        self.launch(self._deployed())

    def restart(self) -> None:
        release = self._deployed()
        self.stop()
        self.launch(release)

    def stop(self) -> None:
        """SIGTERM the recorded PID, wait (bounded), SIGKILL; nothing else is signalled."""
        now = self.running()
        self.pid_file.unlink(missing_ok=True)
        if now is None:
            print(f"nothing running on {self.where}")
            return
        pid = now[0]
        os.kill(pid, signal.SIGTERM)
        if not _wait_gone(pid, STOP_TIMEOUT_S):
            os.kill(pid, signal.SIGKILL)
            _wait_gone(pid, 2.0)
        print(f"stopped pid {pid} on {self.where}")

    def current(self) -> Release | None:
        now = self.running()
        return now[1] if now is not None and self.healthy() else None

    def launch(self, release: Release) -> None:
        """Start ``release`` in its own session and wait until it answers /healthz."""
        if port_open(self.port):
            raise HostError(f"{self.where} is in use by a process this agent did not start")
        with self.log.open("ab") as log:
            process = subprocess.Popen(
                release.argv(self.port),
                cwd=REPO,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # outlives this agent and the command platform's group
            )
        self.pid_file.write_text(f"{process.pid}\n")
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not self.healthy():
            if process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise HostError(
                    f"{release.version} did not come up on {self.where}:\n{self.tail()}"
                )
            time.sleep(0.05)
        print(f"started {release.service} {release.version} on {self.where} (pid {process.pid})")

    def tail(self, lines: int = 10) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def _deployed(self) -> Release:
        release = self.deployed()
        if release is None:
            raise NothingDeployed(f"nothing deployed on {self.where} (run deploy first)")
        return release


def _cmdline(pid: int) -> list[str] | None:
    try:
        raw = (Path("/proc") / str(pid) / "cmdline").read_bytes()
    except OSError:
        return None
    return [part.decode(errors="replace") for part in raw.split(b"\0")[:-1]]


def _wait_gone(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@contextmanager
def _locked(state_dir: Path, port: int) -> Iterator[None]:
    """One verb at a time per port (a retried activity may overlap the first attempt)."""
    with (state_dir / f"{port}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("verb", choices=["deploy", "start", "stop", "restart", "current"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--version", help="deploy: the version to run")
    parser.add_argument("--service", default="checkout")
    parser.add_argument("--error-rate", type=float, default=0.0)
    parser.add_argument(
        "--broken-version",
        action="append",
        default=[],
        metavar="VERSION",
        help="deploy: this version is a bad build, run it with error rate 1.0 (repeatable)",
    )
    parser.add_argument("--state-dir", type=Path, default=STATE / "hosts")
    args = parser.parse_args(argv)
    if args.verb == "deploy" and not args.version:
        parser.error("deploy needs --version")

    args.state_dir.mkdir(parents=True, exist_ok=True)
    host = Host(args.state_dir, args.port)
    with _locked(args.state_dir, args.port):
        try:
            if args.verb == "deploy":
                broken = args.version in args.broken_version
                rate = 1.0 if broken else args.error_rate
                host.deploy(Release(args.service, args.version, rate))
            elif args.verb == "current":
                release = host.current()
                if release is None:
                    return NOT_RUNNING
                print(release.version)
            else:
                getattr(host, args.verb)()
        except HostError as e:
            print(f"{args.verb}: {e}", file=sys.stderr)
            return NOTHING_DEPLOYED if isinstance(e, NothingDeployed) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
