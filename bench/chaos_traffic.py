"""Where bench/chaos.py's traffic goes: each lane's load balancer (NGINX or HAProxy, its
router-owned file rendered by the router's own code), the hosts behind it (the host agent's
demo services, examples/demo/host.py, one per port) and a load thread that keeps every
host's request counters moving for the analysis queries.
"""

from __future__ import annotations

import contextlib
import http.client
import subprocess
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from chaos_parts import BIN, PartError, Process, free_port, until
from common import REPO
from processes import HOST, port_open  # on sys.path since chaos_parts

from activities.routing.base import ServerState, Weights
from activities.routing.haproxy.plan import render_backend
from activities.routing.haproxy.router import HAProxyRouter
from activities.routing.nginx import NginxRouter, render_upstream
from activities.routing.spec import CONFIG_PLACEHOLDER, HAProxyRouterSpec, NginxRouterSpec

HOST_AGENT = REPO / "examples" / "demo" / "host.py"


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
