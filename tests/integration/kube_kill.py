"""A ``deployflow worker`` process against the API server double, SIGKILLed at a chosen
moment: the shape of the worker-killed tests on Kubernetes."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TypeVar

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.testing import WorkflowEnvironment

from activities.clients import Clients
from activities.kubeconfig import KubeClients
from tests.fixtures.cli import spawn
from tests.fixtures.harness import worker
from tests.fixtures.kube import Kube
from workers.main import activities_with

T = TypeVar("T")


async def killed_when(
    temporal_env: WorkflowEnvironment,
    kube: Kube,
    start: Callable[[str], Awaitable[T]],
    done: Callable[[], bool],
) -> tuple[str, T]:
    """Start a worker process on a fresh task queue, call ``start(queue)`` (it starts the
    workflow), and SIGKILL the worker once ``done()`` holds after a change in the double's
    store (at most 60 s). The queue, and what ``start`` returned."""
    queue = f"it-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": temporal_env.client.service_client.config.target_host,
        "DEPLOYFLOW_TASK_QUEUE": queue,
        "KUBECONFIG": str(kube.kubeconfig),
    }
    assert kube.server is not None
    loop, changed = asyncio.get_running_loop(), asyncio.Event()
    unsubscribe = kube.server.store.subscribe(lambda: loop.call_soon_threadsafe(changed.set))
    process = await spawn(env, "worker")
    try:
        started = await start(queue)
        async with asyncio.timeout(60):
            while not done():
                await changed.wait()  # the double's store changed: look again
                changed.clear()
    finally:
        unsubscribe()
        process.kill()  # SIGKILL: no cleanup, the attempt is lost with the process
        await process.wait()
    return queue, started


@asynccontextmanager
async def replacement_worker(
    temporal_env: WorkflowEnvironment, kube: Kube, queue: str, workflows: Sequence[type]
) -> AsyncIterator[None]:
    """The worker that takes over ``queue``, in this process, with the controller now
    advancing on every request (the killed attempt's wait can finish)."""
    assert kube.controller is not None
    kube.controller.auto_advance()
    clients = Clients(kubernetes=KubeClients(kubeconfig=str(kube.kubeconfig)))
    try:
        async with worker(temporal_env, workflows, activities_with(clients), task_queue=queue):
            yield
    finally:
        clients.kubernetes.close()


def activity_attempts(history: WorkflowHistory) -> list[int]:
    """The attempt number of every activity task started in ``history``."""
    return [
        e.activity_task_started_event_attributes.attempt
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
    ]
