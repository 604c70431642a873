"""The real parts bench/chaos.py runs on, each its own process on 127.0.0.1 in one work dir.

The Temporal dev server keeps its state in a SQLite file, so it can be stopped and started
again mid-soak; every lane has its own NGINX or HAProxy (the router-owned file rendered by
the router's own code), its own ``deployflow worker`` on its own task queue, and its hosts:
the host agent's demo services (examples/demo/host.py), one per port. One Prometheus
scrapes every host each second, and a load thread keeps their request counters moving.
Everything is started by PID and stopped by PID (hosts through the agent's PID files).
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from common import REPO
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter

from activities.routing.base import ServerState, Weights
from activities.routing.haproxy import (
    CONFIG_PLACEHOLDER,
    HAProxyRouter,
    HAProxyRouterSpec,
    render_backend,
)
from activities.routing.nginx import NginxRouter, NginxRouterSpec, render_upstream
from starters.devserver import build_command, find_temporal_binary
from workflows import search_attributes as sa

sys.path.insert(0, str(REPO / "examples" / "demo"))
from processes import HOST, http_status, port_open

BIN = Path(sys.executable).parent
HOST_AGENT = REPO / "examples" / "demo" / "host.py"
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
            client = await Client.connect(self.address)
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
        return await Client.connect(
            self.address, data_converter=pydantic_data_converter, runtime=Runtime(telemetry=quiet)
        )


# -- routers ---------------------------------------------------------------------------

NGINX_CONF = """\
daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    include {upstream_file};
    include {prefix}/conf.d/*.conf;
    server {{
        listen {host}:{port};
        location / {{ proxy_pass http://{upstream}; proxy_next_upstream off; }}
    }}
}}
"""

HAPROXY_CFG = """\
global
    stats socket {socket} mode 600 level admin
    pidfile {prefix}/haproxy.pid
    maxconn 500
defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s
frontend {backend}
    bind {host}:{port}
    default_backend {backend}
"""


class Router:
    """A lane's load balancer: its process, the router spec deployflow drives it with."""

    kind = ""

    def __init__(self, prefix: Path, name: str, stable: list[str], canary: list[str]) -> None:
        self.prefix, self.name, self.stable, self.canary = prefix, name, stable, canary
        self.port = free_port()
        prefix.mkdir(parents=True)
        self.process: Process

    def spec(self) -> dict[str, Any]:
        """The ``router:`` section of a Rollout for this load balancer."""
        raise NotImplementedError

    def router(self) -> NginxRouter | HAProxyRouter:
        raise NotImplementedError

    def weights(self) -> Weights | None:
        """What the load balancer runs now (HAProxy: its runtime; None if unreadable)."""
        try:
            return self.router().get_weights()
        except Exception:  # socket gone, file mid-rewrite: no sample
            return None

    def states(self) -> dict[str, ServerState] | None:
        try:
            return self.router().get_server_states()
        except Exception:  # as above
            return None

    def reset(self, weights: Weights) -> None:
        """Put ``weights`` and every server READY back, with the router's own code."""
        router = self.router()
        router.set_server_states(dict.fromkeys([*self.stable, *self.canary], ServerState.READY))
        router.set_weights(weights)
        self.reload()

    def reload(self) -> None:
        """Make the load balancer run what its file says (NGINX may not, see NginxLane)."""

    def get(self) -> tuple[int, str]:
        """One ``GET /`` through the load balancer on a fresh connection."""
        return get(self.port)

    async def start(self) -> None:
        self.process.start()
        await until(lambda: port_open(self.port) or not self.process.running(), self.name, 15, 0.05)
        if not self.process.running():
            raise PartError(f"{self.name} exited; see {self.process.log}")


class NginxLane(Router):
    kind = "nginx"

    def __init__(
        self, prefix: Path, name: str, stable: list[str], canary: list[str], weights: Weights
    ) -> None:
        super().__init__(prefix, name, stable, canary)
        for sub in ("tmp", "conf.d"):
            (prefix / sub).mkdir()
        self.upstream_file = prefix / "upstream.conf"
        self.upstream_file.write_text(render_upstream("app", stable, canary, weights))
        (prefix / "nginx.conf").write_text(
            NGINX_CONF.format(
                prefix=prefix, upstream_file=self.upstream_file, host=HOST, port=self.port,
                upstream="app",
            )
        )  # fmt: skip
        self.base = ["/usr/sbin/nginx", "-p", str(prefix), "-c", str(prefix / "nginx.conf")]
        self.process = Process(name, self.base, prefix / "stderr.log")

    def spec(self) -> dict[str, Any]:
        return {
            "nginx": {
                "upstream": "app",
                "configPath": str(self.upstream_file),
                "stable": self.stable,
                "canary": self.canary,
                "testCommand": [*self.base, "-t", "-q"],
                "reloadCommand": [*self.base, "-s", "reload"],
            }
        }

    def router(self) -> NginxRouter:
        return NginxRouter(NginxRouterSpec.model_validate(self.spec()["nginx"]))

    def reload(self) -> None:
        """A worker killed between writing the file and ``nginx -s reload`` leaves NGINX on
        the old file, and the router skips the reload when the file already says what it
        wants: reload whatever happened."""
        subprocess.run([*self.base, "-s", "reload"], capture_output=True, timeout=10, check=True)

    def break_config(self) -> None:
        """Someone else's broken file beside ours: ``nginx -t`` (the test command) fails."""
        (self.prefix / "conf.d" / "broken.conf").write_text("chaos_unknown_directive on;\n")

    def repair_config(self) -> None:
        (self.prefix / "conf.d" / "broken.conf").unlink(missing_ok=True)


class HAProxyLane(Router):
    kind = "haproxy"

    def __init__(
        self, prefix: Path, name: str, stable: list[str], canary: list[str], weights: Weights
    ) -> None:
        super().__init__(prefix, name, stable, canary)
        self.socket = prefix / "admin.sock"
        self.main = prefix / "haproxy.cfg"
        self.main.write_text(
            HAPROXY_CFG.format(
                socket=self.socket, prefix=prefix, backend=name, host=HOST, port=self.port
            )
        )
        self.backend_file = prefix / f"{name}.cfg"
        self.backend_file.write_text(render_backend(name, stable, canary, weights))
        argv = ["/usr/sbin/haproxy", "-W", "-f", str(self.main), "-f", str(self.backend_file)]
        self.process = Process(name, argv, prefix / "stderr.log")

    def spec(self) -> dict[str, Any]:
        check = ["/usr/sbin/haproxy", "-c", "-q", "-f", str(self.main), "-f", CONFIG_PLACEHOLDER]
        return {
            "haproxy": {
                "backend": self.name,
                "socket": str(self.socket),
                "configPath": str(self.backend_file),
                "stable": self.stable,
                "canary": self.canary,
                "checkCommand": check,
            }
        }

    def router(self) -> HAProxyRouter:
        return HAProxyRouter(HAProxyRouterSpec.model_validate(self.spec()["haproxy"]))

    def socket_gone(self) -> None:
        """The admin socket disappears (moved away): every runtime command fails."""
        self.socket.rename(self.socket.with_suffix(".gone"))

    def socket_back(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.socket.with_suffix(".gone").rename(self.socket)


# -- hosts, Prometheus, workers, load ----------------------------------------------------


def get(port: int, timeout: float = 1.0) -> tuple[int, str]:
    """``GET /`` on 127.0.0.1:``port``, fresh connection: status and body (0, '' if none)."""
    connection = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        connection.request("GET", "/", headers={"Connection": "close"})
        response = connection.getresponse()
        return response.status, response.read(200).decode(errors="replace").strip()
    except (OSError, http.client.HTTPException):
        return 0, ""
    finally:
        connection.close()


class Hosts:
    """The "VMs": ports the host agent runs demo services on, state in one directory."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        state_dir.mkdir(parents=True)
        self.ports: list[int] = []

    def agent(self, verb: str, port: int | str, *more: str) -> list[str]:
        return [
            str(BIN / "python"), str(HOST_AGENT), verb, "--port", str(port),
            "--state-dir", str(self.state_dir), *more,
        ]  # fmt: skip

    def platform(self, broken: list[str]) -> dict[str, Any]:
        """The command platform of a Rollout: the agent's verbs; ``broken`` versions answer
        500 on / (a bad build that still says ok on /healthz)."""
        flags = [word for version in broken for word in ("--broken-version", version)]
        return {
            "command": {
                "deploy": self.agent(
                    "deploy", "{port}", "--version", "{version}", "--service", "{service}", *flags
                ),
                "start": self.agent("start", "{port}"),
                "stop": self.agent("stop", "{port}"),
                "current": self.agent("current", "{port}"),
                "timeoutSeconds": 20,
            }
        }

    def deploy(self, port: int, service: str, version: str) -> None:
        if port not in self.ports:
            self.ports.append(port)
        argv = self.agent("deploy", port, "--version", version, "--service", service)
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
        if done.returncode != 0:
            raise PartError(f"host.py deploy {version} on :{port}: {done.stderr.strip()}")

    def stop_all(self) -> None:
        for port in self.ports:
            subprocess.run(self.agent("stop", port), capture_output=True, timeout=30, check=False)

    @staticmethod
    def version(port: int) -> str | None:
        """The version a host answers ``GET /`` with (its body is ``service version``);
        None when nothing answers 200."""
        status, body = get(port, timeout=0.5)
        words = body.split()
        return words[1] if status == 200 and len(words) == 2 else None

    @staticmethod
    def set_error_rate(port: int, rate: float) -> None:
        url = f"http://{HOST}:{port}/admin/error-rate"
        request = urllib.request.Request(url, data=str(rate).encode(), method="POST")
        with contextlib.suppress(OSError), urllib.request.urlopen(request, timeout=2) as answer:
            answer.read()


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

    def __init__(self, address: str, task_queue: str, log: Path) -> None:
        self.env = {
            "TEMPORAL_ADDRESS": address,
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
            str(BIN / "deployflow"), "worker",
            cwd=REPO, env={**os.environ, **self.env}, stdin=subprocess.DEVNULL,
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


class Load(threading.Thread):
    """``GET /`` to every host in turn, ``rate`` requests a second each, until stopped: the
    analysis queries' error ratios need requests to count."""

    def __init__(self, ports: list[int], rate: float) -> None:
        super().__init__(name="load", daemon=True)
        self.ports, self.period = ports, 1.0 / rate
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            began = time.monotonic()
            for port in self.ports:
                get(port, timeout=0.5)
            self.stopped.wait(max(0.0, self.period - (time.monotonic() - began)))
