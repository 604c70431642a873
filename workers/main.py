"""`deployflow worker`: one worker for every deployflow workflow and activity.

Blocking clients (subprocess for nginx, requests for Prometheus) run in sync activities on
a thread pool. SIGINT/SIGTERM stop polling and let running activities finish for the grace
period; then the SDK cancels the rest (a heartbeating activity sees the cancel, and the
server retries it on another worker) and the worker exits 0. A second signal exits at once
(128 + the signal's number), killing the commands running activities started and leaving
the activities to their heartbeat timeouts.
With ``--metrics-listen`` it serves Prometheus metrics (``workers/telemetry.py``), with
``--health-listen`` liveness and readiness (``workers/health.py``). With ``--host NAME`` it
is a load balancer's agent instead (``workers/agent.py``): traffic activities only, on
that host's own task queue.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
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
from activities.health.deployments import ReadinessActivities
from activities.health.dns import resolve_names
from activities.metrics.activities import measure
from activities.metrics.trend import memory_trend
from activities.migrations.activities import MigrationActivities
from activities.notify.activities import page, post_slack
from activities.notify.rollout import RolloutNotices
from activities.platforms.activities import PlatformActivities
from activities.platforms.process import kill_running
from activities.routing.activities import RouterActivities
from activities.routing.spec import agent_queue
from activities.temporal.activities import WorkflowWatcher
from workers.agent import AGENT_THREADS, build_agent
from workers.config import TemporalConfig
from workers.health import Readiness, health_app
from workers.listen import start_site
from workers.options import DEFAULT_GRACE, WorkerOptions, bind_address
from workers.remediation import Remediation
from workers.rollout_incident import RollbackIncidents
from workers.scope_planning import ScopePlanning
from workers.telemetry import ActivityMetrics, runtime_with_metrics
from workers.usage import UsageError
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
    readiness = ReadinessActivities(clients)
    return [
        *routing.all(),
        platforms.platform_action,
        platforms.current_version,
        platforms.record_stable,
        platforms.apply_canary,
        platforms.set_stable,
        platforms.scale_workload,
        platforms.pause_workload,
        platforms.restart_workload,
        readiness.check_readiness,
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
    graceful_shutdown_timeout: timedelta = DEFAULT_GRACE,
) -> Worker:
    """A worker for every workflow and activity; ``clients`` are built here unless given."""
    remediation = Remediation(client, task_queue, ui_url)
    notices = RolloutNotices(None if ui_url is None else _workflow_url(ui_url, client.namespace))
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
            notices.notify_slack,
            notices.notify_webhook,
            RollbackIncidents(client, task_queue, ui_url).open_rollout_incident,
            ScopePlanning(client).plan_scope_member,
        ],
        activity_executor=executor,
        max_concurrent_activities=ACTIVITY_THREADS,
        max_concurrent_workflow_tasks=WORKFLOW_TASKS_IN_FLIGHT,
        sticky_queue_schedule_to_start_timeout=STICKY_SCHEDULE_TO_START,
        graceful_shutdown_timeout=graceful_shutdown_timeout,
        interceptors=[ActivityMetrics()],
    )


def _workflow_url(ui_url: str, namespace: str) -> Callable[[str, str | None], str]:
    config = TemporalConfig(namespace=namespace, ui_url=ui_url.rstrip("/"))
    return config.workflow_url


async def run_worker(
    config: TemporalConfig, stop: asyncio.Event, options: WorkerOptions | None = None
) -> None:
    """Poll ``config.task_queue`` until ``stop`` is set, then shut down gracefully."""
    options = options or WorkerOptions()
    if options.metrics_listen is not None:
        config = _with_metrics(config, options.metrics_listen)
    if options.host is not None:
        queue = options.agent_queue or agent_queue(options.host)
        config = dataclasses.replace(config, task_queue=queue)
    client = await config.connect()
    readiness = Readiness(client, config.task_queue)
    if options.host is not None:
        readiness.polled = ("activity",)
    health = None
    if options.health_listen is not None:
        host, port = options.health_listen
        health = await start_site(
            health_app(readiness), host, port, shutdown_timeout=1.0, flag="--health-listen"
        )
    try:
        threads = ACTIVITY_THREADS if options.host is None else AGENT_THREADS
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="activity") as executor:
            if options.host is None:
                worker = build_worker(
                    client,
                    config.task_queue,
                    executor,
                    config.ui_url,
                    graceful_shutdown_timeout=options.grace_period,
                )
            else:
                worker = build_agent(
                    client, options.host, config.task_queue, executor, options.grace_period
                )
            async with worker:
                role = {} if options.host is None else {"agent_of": options.host}
                log.info("worker started", **config.describe(), **role, **_endpoints(options))
                await stop.wait()
                readiness.stopping = True
                log.info(
                    "worker stopping: polling stops, running activities may finish",
                    grace_period_s=options.grace_period.total_seconds(),
                )
    finally:
        if health is not None:
            await health.cleanup()
    log.info("worker stopped")


def _with_metrics(config: TemporalConfig, address: tuple[str, int]) -> TemporalConfig:
    """``config`` connecting on a runtime that serves Prometheus metrics at ``address``."""
    try:
        runtime = runtime_with_metrics(bind_address(address))
    except Exception as exc:  # the SDK's bind error: "Failed to bind ...", a ValueError
        raise UsageError(f"--metrics-listen {bind_address(address)}: {exc}") from None
    options = {**config.connect_options, "runtime": runtime}
    return dataclasses.replace(config, connect_options=options)


def _endpoints(options: WorkerOptions) -> dict[str, str]:
    shown = {}
    if options.metrics_listen is not None:
        shown["metrics"] = f"http://{bind_address(options.metrics_listen)}/metrics"
    if options.health_listen is not None:
        shown["health"] = f"http://{bind_address(options.health_listen)}/readyz"
    return shown


def run(args: argparse.Namespace) -> int:
    config = TemporalConfig.from_env(args.profile)
    options = WorkerOptions.from_args(args)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        def on_signal(sig: signal.Signals) -> None:
            if not stop.is_set():
                stop.set()
                return
            # A second signal: running activities are abandoned to their heartbeat (or
            # start-to-close) timeouts, and the server retries them elsewhere; the commands
            # they run are killed, so none keeps going beside its retry.
            log.warning("worker forced to stop", signal=sig.name, commands_killed=kill_running())
            os._exit(128 + sig)

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal, sig)
        await run_worker(config, stop, options)

    asyncio.run(main())
    return 0
