"""An alert becomes one incident, one page and one Slack thread — on real processes.

The demo service answers 500s → Prometheus (1 s scrape and rule evaluation) fires
``CheckoutHighErrorRate`` → a real Alertmanager posts its webhook to ``deployflow serve``
(in-process, real HTTP) → signal-with-start of ``IncidentRunbook`` on the dev server → a
real worker pages the local PagerDuty (HTTPS, Events v2) and posts to the local Slack with
the real clients. Alertmanager repeats the notification every few seconds and the worker is
restarted mid-incident: still one incident and one page. The errors stop → the resolved
notification resolves the page and the thread.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import web
from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from starters.serve import build_app
from tests.fixtures.alertmanager import StartAlertmanager
from tests.fixtures.harness import poll
from tests.fixtures.notify import NotifyEnv
from tests.fixtures.parts import free_port
from tests.fixtures.prometheus import DemoService, StartPrometheus
from tests.integration.test_alertmanager_webhook import RATIO, RULES, Load
from workers.main import ACTIVITY_THREADS, build_worker
from workflows.incidents.models import IncidentPhase, IncidentStatus
from workflows.incidents.spec import Runbook, load_runbooks

pytestmark = pytest.mark.integration

TOKEN = "e2e-webhook-token"


def runbook(prometheus: str) -> str:
    return f"""
apiVersion: deployflow/v1
kind: Runbook
metadata: {{name: checkout-errors}}
spec:
  match: {{alertname: CheckoutHighErrorRate}}
  environment: production
  slack: {{channel: "#incidents"}}
  steps:
    - page: {{}}
    - notify: {{text: ":rotating_light: {{{{alertname}}}} on {{{{service}}}}: {{{{summary}}}}"}}
    - query:
        name: error-rate
        provider: {{prometheus: {{address: "{prometheus}", query: '{RATIO}'}}}}
"""


@asynccontextmanager
async def worker(client: Client, queue: str) -> AsyncIterator[None]:
    with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
        async with build_worker(client, queue, executor, "http://127.0.0.1:8233"):
            yield


@asynccontextmanager
async def serve(client: Client, queue: str, runbooks: list[Runbook]) -> AsyncIterator[str]:
    """The intake on a real port; ``runbooks`` is read per request (fill it in later)."""

    async def connect() -> Client:
        return client

    app = build_app(connect, runbooks, TOKEN, task_queue=queue, ui_base="http://127.0.0.1:8233")
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}/alerts/alertmanager"
    finally:
        await runner.cleanup()


async def incident(client: Client, queue: str) -> WorkflowHandle[Any, IncidentStatus] | None:
    """The one incident on this test's task queue (None before it starts)."""
    query = f"WorkflowType = 'IncidentRunbook' AND TaskQueue = '{queue}'"
    ids = {wf.id async for wf in client.list_workflows(query)}
    assert len(ids) <= 1, f"more than one incident: {ids}"
    return client.get_workflow_handle(ids.pop(), result_type=IncidentStatus) if ids else None


async def test_alert_pages_once_posts_a_thread_and_resolves_both(
    temporal_env: WorkflowEnvironment,
    demo_service: Callable[..., DemoService],
    prometheus_server: StartPrometheus,
    alertmanager_server: StartAlertmanager,
    notify_env: NotifyEnv,
):
    address = temporal_env.client.service_client.config.target_host
    client = await Client.connect(address, data_converter=pydantic_data_converter)
    queue = f"incident-{uuid.uuid4().hex[:8]}"
    service = demo_service("v1", service="checkout")
    pagerduty, slack = notify_env.pagerduty, notify_env.slack
    runbooks: list[Runbook] = []
    async with serve(client, queue, runbooks) as url:
        am = alertmanager_server(url, token=TOKEN, group_interval="1s", repeat_interval="2s")
        prometheus = prometheus_server([service.target], rules=RULES, alertmanagers=[am.target])
        runbooks[:] = load_runbooks(runbook(prometheus.url))
        prometheus.wait_for_targets_up()
        prometheus.wait_for_alertmanagers()
        with Load(service.url, per_second=20, limit=20 * 120):
            async with worker(client, queue):
                service.set_error_rate(1.0)
                await poll(lambda: am.alerts(), "the alert active in Alertmanager")
                active = time.monotonic()
                await poll(lambda: pagerduty.events(), "the page")
                paged = time.monotonic()
                handle = await poll(lambda: incident(client, queue), "the incident workflow")
                await poll(lambda: slack.messages(), "the Slack post")
            # A new worker takes over the open incident mid-way; repeats keep arriving.
            async with worker(client, queue):
                await poll(lambda: _notifications(handle, at_least=4), "repeated notifications")
                service.set_error_rate(0.0)
                result = await poll(lambda: _resolved(handle), "the incident resolved")
    print(f"alert active in Alertmanager → page at PagerDuty: {paged - active:.2f} s")
    triggers = [e for e in pagerduty.events() if e["event_action"] == "trigger"]
    assert len(triggers) == 1, triggers
    assert [i["state"] for i in pagerduty.incidents()] == ["resolved"]
    assert {e["dedup_key"] for e in pagerduty.events()} == {result.dedup_key}
    assert result.phase is IncidentPhase.RESOLVED
    assert result.resolved_by == "alertmanager"
    assert result.notifications >= 5
    messages = slack.messages()
    roots = [m for m in messages if not m.get("thread_ts")]
    assert len(roots) == 1, messages
    assert roots[0]["text"].startswith(":white_check_mark: RESOLVED")
    replies = [m["text"] for m in messages if m.get("thread_ts")]
    assert any(r.startswith("error-rate: ") for r in replies), replies
    assert any(r.startswith("resolved by alertmanager") for r in replies), replies


async def _notifications(handle: WorkflowHandle[Any, IncidentStatus], at_least: int) -> bool:
    status = await handle.query("status", result_type=IncidentStatus)
    return status.notifications >= at_least


async def _resolved(handle: WorkflowHandle[Any, IncidentStatus]) -> IncidentStatus | None:
    description = await handle.describe()
    if description.status is None or description.status.name == "RUNNING":
        return None
    return await handle.result()
