"""Running the double: an HTTP server on 127.0.0.1 in a thread of its own, and a kubeconfig.

The official client is synchronous (urllib3), so the server cannot share the test's event
loop; it runs its own in a daemon thread and is stopped by :meth:`KubeApiServer.stop`.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from types import TracebackType
from typing import Self

import aiohttp.test_utils
import yaml

from activities.kubernetes.testing.api import ApiServerDouble
from activities.kubernetes.testing.controller import DeploymentController
from activities.kubernetes.testing.store import Store

DEFAULT_CONTEXT = "deployflow-double"


class KubeApiServer:
    """The double listening on ``host:port`` (0: a free port), with its controller."""

    def __init__(
        self, store: Store | None = None, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.store = store or Store()
        self.controller = DeploymentController(self.store)
        self.double = ApiServerDouble(store=self.store)
        self.controller.attach(self.double)
        self._host, self._port = host, port
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="kube-api-double", daemon=True
        )
        self._server: aiohttp.test_utils.RawTestServer | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the API server double is not running")
        return f"http://{self._server.host}:{self._server.port}"

    def start(self) -> Self:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._enter(), self._loop).result(timeout=30)
        return self

    def stop(self) -> None:
        if self._server is not None:
            asyncio.run_coroutine_threadsafe(self._exit(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._loop.close()

    def write_kubeconfig(
        self, path: Path, context: str = DEFAULT_CONTEXT, namespace: str = "default"
    ) -> Path:
        """Point ``context`` (cluster and user of the same name) at this server in the
        kubeconfig at ``path``, keeping what else the file holds: several doubles can share
        one kubeconfig as several clusters do. The first context written is the current one."""
        config = yaml.safe_load(path.read_text()) if path.exists() else None
        config = config or {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [],
            "users": [],
            "contexts": [],
        }
        entries = {
            "clusters": {"name": context, "cluster": {"server": self.url}},
            "users": {"name": context, "user": {}},
            "contexts": {
                "name": context,
                "context": {"cluster": context, "user": context, "namespace": namespace},
            },
        }
        for section, entry in entries.items():
            config[section] = [e for e in config.get(section) or [] if e.get("name") != context] + [
                entry
            ]
        config.setdefault("current-context", context)
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    async def _enter(self) -> None:
        await self.double.__aenter__()
        # aiohttp's raw server, not kmock.Server: that one also patches aiohttp's DNS resolution
        # process-wide, which other aiohttp clients in a test process should not inherit.
        # No access log: requests are recorded by the double, and aiohttp's logging from the
        # server's thread wrote to streams pytest had already closed ("Logging error").
        self._server = aiohttp.test_utils.RawTestServer(
            self.double,
            host=self._host,
            port=self._port or None,
            shutdown_timeout=2.0,
        )
        # start_server's keywords reach the request handler; the constructor's do not.
        await self._server.start_server(access_log=None)

    async def _exit(self) -> None:
        assert self._server is not None
        self.double.close_watches()
        await self._server.close()
        await self.double.__aexit__(None, None, None)
        self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
