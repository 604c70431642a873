"""The processes bench/chaos.py runs besides the lanes' traffic (chaos_traffic.py), each
on 127.0.0.1 in one work dir, started and stopped by PID: the Temporal dev server (its
state in a SQLite file, so it can be stopped and started again mid-soak), Prometheus
scraping every host each second, and the lanes' ``deployflow worker`` processes.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from common import REPO
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter

from starters.devserver import build_command, find_temporal_binary
from workers.config import TemporalConfig
from workflows.core import search_attributes as sa

sys.path.insert(0, str(REPO / "examples" / "demo"))
from processes import HOST, http_status

BIN = Path(sys.executable).parent
STOP_TIMEOUT_S = 10.0


class PartError(RuntimeError):
    """A part did not start or answer in time; the message names it and its log."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


async def until(check: Any, what: str, timeout: float, every: float = 0.1) -> None:
    """Poll ``check()`` (sync or async) until truthy; PartError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        if time.monotonic() > deadline:
            raise PartError(f"{what}: not within {timeout:g}s")
        await asyncio.sleep(every)


class Process:
    """One child process by PID, its output in ``log``; stopped SIGTERM-then-SIGKILL."""

    def __init__(
        self, name: str, argv: list[str], log: Path, env: dict[str, str] | None = None
    ) -> None:
        self.name, self.argv, self.log, self.env = name, argv, log, env or {}
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(
                self.argv,
                cwd=REPO,
                env={**os.environ, **self.env},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self) -> None:
        if not self.running():
            return
        assert self.popen is not None
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout=5)


# -- Temporal --------------------------------------------------------------------------


class DevServer:
    """``temporal server start-dev`` with a SQLite file: a restart keeps every workflow."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        argv = build_command(
            find_temporal_binary(),
            port=self.port,
            db_filename=workdir / "temporal.db",
            headless=True,
            log_level="error",
        )
        self.process = Process("temporal", argv, workdir / "temporal.log")

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    async def ready(self) -> bool:
        try:
            client = await TemporalConfig(address=self.address).connect()
            listed = await client.operator_service.list_search_attributes(
                ListSearchAttributesRequest(namespace="default")
            )
        except Exception:  # not listening yet: any failure means "not yet"
            return False
        return all(key.name in listed.custom_attributes for key in sa.ALL)

    async def start(self) -> None:
        self.process.start()
        await until(self.ready, f"the Temporal dev server ({self.process.log})", 60, 0.2)

    async def restart(self) -> float:
        """Stop by PID and start on the same file and port; seconds it was down."""
        began = time.monotonic()
        await asyncio.to_thread(self.process.stop)
        await self.start()
        return time.monotonic() - began

    async def client(self) -> Client:
        """The bench's client; the SDK's retry warnings while the server restarts (which
        the bench causes) stay out of the report."""
        quiet = TelemetryConfig(logging=LoggingConfig(filter=TelemetryFilter("ERROR", "ERROR")))
        options = {"runtime": Runtime(telemetry=quiet)}
        return await TemporalConfig(address=self.address, connect_options=options).connect()


PROMETHEUS_YML = """\
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
scrape_configs:
  - job_name: chaos
    static_configs:
      - targets: [{targets}]
"""


class Prometheus:
    def __init__(self, workdir: Path, ports: list[int]) -> None:
        self.port = free_port()
        directory = workdir / "prometheus"
        directory.mkdir()
        config = directory / "prometheus.yml"
        config.write_text(PROMETHEUS_YML.format(targets=", ".join(f"'{HOST}:{p}'" for p in ports)))
        argv = [
            "/usr/bin/prometheus",
            f"--config.file={config}",
            f"--storage.tsdb.path={directory / 'data'}",
            f"--web.listen-address={HOST}:{self.port}",
        ]
        self.process = Process("prometheus", argv, directory / "prometheus.log")

    @property
    def address(self) -> str:
        return f"http://{HOST}:{self.port}"

    async def start(self) -> None:
        self.process.start()
        ready = f"{self.address}/-/ready"
        await until(lambda: http_status(ready) == 200, f"prometheus ({self.process.log})", 60, 0.2)

    def stop(self) -> None:
        self.process.stop()


class Worker:
    """``deployflow worker`` on a lane's task queue, as a user runs it (its settings are the
    code's). Ready = the moment its ``worker started`` line arrives."""

    def __init__(
        self, address: str, task_queue: str, log: Path, args: tuple[str, ...] = ()
    ) -> None:
        """``args``: more ``deployflow worker`` flags (``--host lb-a`` makes an agent)."""
        self.args = args
        # This shell's Temporal profile, TLS, API key or payload codec are not the bench's
        # dev server's: only what is set here (and no profile file) reaches the worker.
        inherited = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("TEMPORAL_", "DEPLOYFLOW_"))
        }
        self.env = inherited | {
            "TEMPORAL_ADDRESS": address,
            "TEMPORAL_CONFIG_FILE": str(log.parent / "no-temporal-profile.toml"),
            "DEPLOYFLOW_TASK_QUEUE": task_queue,
            "PYTHONUNBUFFERED": "1",
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', os.defpath)}",
        }
        self.log = log
        self.process: asyncio.subprocess.Process | None = None
        self._copy: asyncio.Task[None] | None = None
        self.exits: list[int] = []  # exit codes of workers that stopped by themselves

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def spawn(self) -> asyncio.Future[float]:
        """Start one; the future is the moment (``time.time()``) its ready line arrived."""
        self.process = await asyncio.create_subprocess_exec(
            str(BIN / "deployflow"), "worker", *self.args,
            cwd=REPO, env=self.env, stdin=subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        ready: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._copy = asyncio.create_task(self._copy_output(self.process, ready))
        return ready

    async def start(self) -> tuple[int, float]:
        """Start workers until one is ready (one started while the server is down exits
        at once); its PID and the moment it was ready. Bounded."""
        deadline = time.monotonic() + 90
        while True:
            ready = await self.spawn()
            try:
                left = max(1.0, deadline - time.monotonic())
                return self.pid, await asyncio.wait_for(ready, timeout=left)
            except TimeoutError:
                raise PartError(f"worker {self.pid} not ready in time: {self.log}") from None
            except PartError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.5)

    def exited(self) -> bool:
        """Whether the current worker stopped without being told to."""
        return self.process is not None and self.process.returncode is not None

    async def _copy_output(
        self, process: asyncio.subprocess.Process, ready: asyncio.Future[float]
    ) -> None:
        assert process.stdout is not None
        with self.log.open("ab") as out:
            out.write(f"--- worker pid {process.pid} ---\n".encode())
            async for line in process.stdout:
                out.write(line)
                out.flush()
                if not ready.done() and b'"worker started"' in line:
                    ready.set_result(time.time())
        code = await process.wait()
        if code not in (0, -signal.SIGKILL):
            self.exits.append(code)
        if not ready.done():
            ready.set_exception(PartError(f"worker {process.pid} exited {code}: {self.log}"))

    async def kill(self) -> None:
        """SIGKILL, no grace: what a crash or an OOM kill does."""
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        if self._copy is not None:
            await self._copy

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), timeout=20)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        if self._copy is not None:
            await self._copy
