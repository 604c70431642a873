"""``deployflow worker --host NAME``: the agent on one load balancer of a router that names
several instances (``router.instances``).

It polls its own task queue (``deployflow-router-NAME``, or the instance's ``taskQueue``
with ``--task-queue``) and runs only the traffic activities: each applies the router spec a
workflow sends to this instance (the shared servers, this host's files and commands) here.
Workflows and every other activity run on the central workers; the agent needs nothing but
a Temporal connection and the load balancer beside it.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker

from activities.clients import Clients
from activities.routing.activities import RouterActivities
from workers.telemetry import ActivityMetrics

AGENT_THREADS = 4
"""Traffic activities on one load balancer are few and short; one rollout's at a time."""


def build_agent(
    client: Client,
    host: str,
    task_queue: str,
    executor: ThreadPoolExecutor,
    graceful_shutdown_timeout: timedelta,
) -> Worker:
    """A worker for the traffic activities only, on this host's ``task_queue``; it refuses
    those meant for another instance than ``host``."""
    return Worker(
        client,
        task_queue=task_queue,
        activities=RouterActivities(Clients(), host=host).all(),
        activity_executor=executor,
        max_concurrent_activities=AGENT_THREADS,
        graceful_shutdown_timeout=graceful_shutdown_timeout,
        interceptors=[ActivityMetrics()],
    )
