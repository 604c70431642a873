"""`deployflow worker`: one worker for every deployflow workflow and activity.

Blocking clients (subprocess for nginx, requests for Prometheus) run in sync activities on
a thread pool. SIGINT/SIGTERM stop polling, let running activities finish (bounded), then
exit 0.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import structlog
from temporalio.client import Client
from temporalio.worker import Worker

from activities.clients import Clients
from activities.health.activities import check_health, run_smoke_tests
from activities.health.certificates import check_certificate
from activities.health.dns import resolve_names
from activities.metrics.activities import measure
from activities.metrics.trend import memory_trend
from activities.migrations.activities import MigrationActivities
from activities.notify.activities import page, post_slack
from activities.platforms.activities import PlatformActivities
from activities.routing.activities import RouterActivities
from activities.temporal.activities import WorkflowWatcher
from workers.config import TemporalConfig
from workers.remediation import Remediation
from workers.scope_planning import ScopePlanning
from workflows.incidents.runbook import IncidentRunbook
from workflows.monitors.healer import SelfHealer
from workflows.monitors.monitor import ServiceMonitorRun
from workflows.promotion.pipeline import PromotionPipeline
from workflows.rollouts.emergency import EmergencyRollback
from workflows.rollouts.registry import BY_STRATEGY
from workflows.rollouts.scope_rollback import ScopeRollback

log = structlog.get_logger()

WORKFLOWS: Sequence[type] = (
    *BY_STRATEGY.values(),
    PromotionPipeline,
    EmergencyRollback,
    ScopeRollback,
    IncidentRunbook,
    ServiceMonitorRun,
    SelfHealer,
)
ACTIVITIES: Sequence[Callable[..., Any]] = (
    measure,
    memory_trend,
    check_health,
    run_smoke_tests,
    check_certificate,
    resolve_names,
    page,
    post_slack,
)
"""The activities that need nothing the worker builds; the others are methods of objects
holding it (``activities_with``)."""
ACTIVITY_THREADS = 32
WORKFLOW_TASKS_IN_FLIGHT = 4
"""Workflow tasks this worker holds at once (the SDK's default is 100). Workflow code runs
under the GIL, so more in flight buy no throughput, only a longer wall time for each: a
worker restarted under hundreds of running rollouts replays cold histories (~1 s each for a
2,000-event canary), and with 100 in flight every one of them would outlive its
``WORKFLOW_TASK_TIMEOUT``. Warm tasks take milliseconds, so 4 handle hundreds a second."""
STICKY_SCHEDULE_TO_START = timedelta(seconds=2)
"""How long a run's next workflow task waits on this worker's sticky queue before any worker
may take it from the normal queue (the SDK's default is 10 s). A SIGKILLed worker never
releases its sticky queue, so this is what a crash costs every run it had cached; the price
is a full-history replay on another worker when this one is merely slow for 2 s."""


def activities_with(clients: Clients) -> list[Callable[..., Any]]:
    """The activities that build routers, platforms and migrators with ``clients``."""
    routing = RouterActivities(clients)
    platforms = PlatformActivities(clients)
    migrations = MigrationActivities(clients)
    return [
        routing.set_weight,
        routing.get_weights,
        routing.set_server_states,
        routing.get_server_states,
        platforms.platform_action,
        platforms.current_version,
        migrations.current_revision,
        migrations.resolve_target,
        migrations.migrate,
    ]


def build_worker(
    client: Client,
    task_queue: str,
    executor: ThreadPoolExecutor,
    ui_url: str | None = None,
    clients: Clients | None = None,
) -> Worker:
    """A worker for every workflow and activity; ``clients`` are built here unless given."""
    remediation = Remediation(client, task_queue, ui_url)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=list(WORKFLOWS),
        activities=[
            *ACTIVITIES,
            *activities_with(clients or Clients()),
            WorkflowWatcher(client).await_closed,
            remediation.plan_rollback,
            remediation.open_incident,
            ScopePlanning(client).plan_scope_member,
        ],
        activity_executor=executor,
        max_concurrent_activities=ACTIVITY_THREADS,
        max_concurrent_workflow_tasks=WORKFLOW_TASKS_IN_FLIGHT,
        sticky_queue_schedule_to_start_timeout=STICKY_SCHEDULE_TO_START,
        graceful_shutdown_timeout=timedelta(seconds=15),
    )


async def run_worker(config: TemporalConfig, stop: asyncio.Event) -> None:
    """Poll ``config.task_queue`` until ``stop`` is set."""
    client = await config.connect()
    with ThreadPoolExecutor(
        max_workers=ACTIVITY_THREADS, thread_name_prefix="activity"
    ) as executor:
        async with build_worker(client, config.task_queue, executor, config.ui_url):
            log.info("worker started", **config.describe())
            await stop.wait()
            log.info("worker stopping", reason="signal")
    log.info("worker stopped")


def run(args: argparse.Namespace) -> int:
    config = TemporalConfig.from_env(args.profile)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_worker(config, stop)

    asyncio.run(main())
    return 0
