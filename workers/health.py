"""The worker's health endpoints, for a process supervisor or Kubernetes probes.

    GET /healthz   200 while the process and its event loop answer (liveness)
    GET /readyz    200 when it polls; 503 with the reason otherwise (readiness)

Ready means: not shutting down, Temporal's frontend answers its gRPC health check, and the
server lists this worker's identity among the pollers of its task queue, for workflow and
for activity tasks. The last is the server's own view, so a worker whose polls never arrive
(a wrong namespace, a proxy in between) is not ready even though it runs. The server keeps
a poller listed for a while after it stops, which is why a worker that is shutting down
says so itself. An agent (``deployflow worker --host``) polls activity tasks only, so only
those are asked for. A ready answer is kept for ``READY_FOR``: a probe every second costs
the cluster three RPCs every few seconds, not three a second.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import timedelta

from aiohttp import web
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

RPC_TIMEOUT = timedelta(seconds=2)
READY_FOR = 5.0
"""Seconds a ready answer is reused before Temporal is asked again."""
POLLED_TYPES = {
    "workflow": TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    "activity": TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
}


@dataclass
class Readiness:
    """Whether the worker of ``client`` polls ``task_queue``."""

    client: Client
    task_queue: str
    stopping: bool = False
    polled: tuple[str, ...] = tuple(POLLED_TYPES)
    """What the worker polls: workflow and activity tasks, or activity tasks (an agent)."""
    _ready_until: float = field(default=0.0, init=False, repr=False)

    async def problem(self) -> str | None:
        """Why the worker is not ready, or None when it is."""
        if self.stopping:
            return "shutting down: no longer polling"
        if time.monotonic() < self._ready_until:
            return None
        problem = await self._ask()
        if problem is None:
            self._ready_until = time.monotonic() + READY_FOR
        return problem

    async def _ask(self) -> str | None:
        address = self.client.service_client.config.target_host
        try:
            serving = await self.client.service_client.check_health(timeout=RPC_TIMEOUT)
        except Exception as exc:  # RPCError, or the connection's RuntimeError
            return f"Temporal at {address} does not answer its health check: {exc}"
        if not serving:
            return f"Temporal at {address} reports its frontend as not serving"
        described = await asyncio.gather(
            *(
                self.client.workflow_service.describe_task_queue(
                    DescribeTaskQueueRequest(
                        namespace=self.client.namespace,
                        task_queue=TaskQueue(name=self.task_queue),
                        task_queue_type=POLLED_TYPES[kind],
                    ),
                    timeout=RPC_TIMEOUT,
                )
                for kind in self.polled
            )
        )
        missing = [
            kind
            for kind, queue in zip(self.polled, described, strict=True)
            if all(p.identity != self.client.identity for p in queue.pollers)
        ]
        if missing:
            return (
                f"Temporal does not list {self.client.identity} as a poller of "
                f"{self.task_queue} ({' and '.join(missing)} tasks) yet"
            )
        return None


def health_app(readiness: Readiness) -> web.Application:
    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "alive"})

    async def readyz(request: web.Request) -> web.Response:
        try:
            problem = await readiness.problem()
        except Exception as exc:  # an RPC error from describe_task_queue
            problem = f"cannot describe task queue {readiness.task_queue}: {exc}"
        if problem is None:
            return web.json_response({"status": "ready", "taskQueue": readiness.task_queue})
        return web.json_response({"status": "not ready", "reason": problem}, status=503)

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app
