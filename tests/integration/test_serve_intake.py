"""`deployflow serve` against the session's Temporal dev server, over real HTTP.

The intake runs in-process on a free port and connects to Temporal itself, as `serve` does
(TemporalConnection). No worker runs: what the intake did is read from Temporal — the
started IncidentRunbook, its input, search attributes and summary, and the signals in its
history. The last test puts a real Alertmanager in front of it.
"""

from __future__ import annotations

import asyncio
import copy
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from starters import serve
from tests.fixtures.alertmanager import StartAlertmanager, alertmanager_server
from tests.fixtures.harness import poll
from tests.fixtures.parts import free_port
from workers.config import TemporalConfig
from workflows.core import search_attributes as sa
from workflows.incidents.models import (
    FIRING_SIGNAL,
    RESOLVED_SIGNAL,
    AlertNotification,
    IncidentInput,
    incident_workflow_id,
)
from workflows.incidents.spec import load_runbooks

pytestmark = pytest.mark.integration

__all__ = ["alertmanager_server"]  # the fixture, until tests/conftest.py registers the plugin

DATA = Path(__file__).resolve().parents[1] / "data" / "alertmanager"
TOKEN = "intake-integration-token"
UI = "http://ui.example:8233"
ALERTNAME = "IntakeTestErrors"
RUNBOOKS = load_runbooks(f"""
apiVersion: deployflow/v1
kind: Runbook
metadata: {{name: intake-test-errors}}
spec:
  match: {{alertname: {ALERTNAME}}}
  environment: intake-test-env
  steps:
    - page: {{}}
""")


@dataclass
class Intake:
    url: str
    session: aiohttp.ClientSession
    client: Client  # the test's own view of Temporal
    opened: set[str] = field(default_factory=set)  # workflow ids, terminated at teardown

    async def post(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with self.session.post(self.url, json=body, headers=headers) as resp:
            answer: dict[str, Any] = await resp.json()
        for incident in answer.get("incidents", []):
            if incident["action"] != "ignored":
                self.opened.add(incident["workflowId"])
        return resp.status, answer


async def history(client: Client, workflow_id: str, run_id: str | None = None) -> list[str]:
    """The run's start and signals, in order: ``started``, ``signal:alert_firing``, ..."""
    events = []
    async for event in client.get_workflow_handle(
        workflow_id, run_id=run_id
    ).fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            events.append("started")
        elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            events.append(
                f"signal:{event.workflow_execution_signaled_event_attributes.signal_name}"
            )
    return events


async def started_input(client: Client, workflow_id: str) -> IncidentInput:
    async for event in client.get_workflow_handle(workflow_id).fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            payloads = event.workflow_execution_started_event_attributes.input.payloads
            [started] = await client.data_converter.decode(payloads, [IncidentInput])
            assert isinstance(started, IncidentInput)
            return started
    raise AssertionError(f"{workflow_id} has no start event")


async def open_incident(client: Client, workflow_id: str) -> bool:
    try:
        await client.get_workflow_handle(workflow_id).describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


@asynccontextmanager
async def running(app: web.Application, port: int = 0) -> AsyncIterator[str]:
    """The app on 127.0.0.1 (a free port unless given); yields its base URL."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        host, bound = runner.addresses[0][:2]
        yield f"http://{host}:{bound}"
    finally:
        await runner.cleanup()


def intake_app(
    env: WorkflowEnvironment, task_queue: str, address: str | None = None
) -> web.Application:
    config = TemporalConfig(
        address=address or env.client.service_client.config.target_host,
        namespace=env.client.namespace,
        task_queue=task_queue,
    )
    return serve.build_app(
        serve.TemporalConnection(config),
        list(RUNBOOKS),
        TOKEN,
        task_queue=task_queue,
        ui_base=UI,
        deliver_timeout=20,
    )


@pytest_asyncio.fixture(loop_scope="session")
async def intake(temporal_env: WorkflowEnvironment) -> AsyncIterator[Intake]:
    app = intake_app(temporal_env, f"intake-{uuid.uuid4().hex[:8]}")
    async with running(app) as base, aiohttp.ClientSession() as session:
        state = Intake(f"{base}{serve.ALERTMANAGER_PATH}", session, temporal_env.client)
        yield state
    for workflow_id in state.opened:  # no worker runs them; leave nothing open
        try:
            await temporal_env.client.get_workflow_handle(workflow_id).terminate("test over")
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise


def notification(
    status: str = "firing", alertname: str = ALERTNAME, **labels: str
) -> dict[str, Any]:
    """A real captured body, moved to a group of its own (a fresh group key per call)."""
    body: dict[str, Any] = json.loads((DATA / f"{status}.json").read_text())
    group = uuid.uuid4().hex[:12]
    common = {"alertname": alertname, "service": f"svc-{group}", **labels}
    body["groupKey"] = f'{{}}:{{alertname="{alertname}", service="svc-{group}"}}'
    body["groupLabels"] = {"alertname": alertname, "service": f"svc-{group}"}
    body["commonLabels"] = common
    for alert in body["alerts"]:
        alert["labels"] = dict(common)
    return body


def resolved(firing: dict[str, Any]) -> dict[str, Any]:
    """The same group's resolution."""
    body = copy.deepcopy(firing)
    body["status"] = "resolved"
    for alert in body["alerts"]:
        alert["status"] = "resolved"
        alert["endsAt"] = "2026-11-22T13:00:00Z"
    return body


async def test_two_firing_notifications_of_a_group_make_one_incident_signalled_twice(intake):
    body = notification()

    first = await intake.post(body)
    second = await intake.post(body)

    incident = incident_workflow_id(body["groupKey"], ALERTNAME)
    expected = {
        "workflowId": incident,
        "action": "started-or-signalled",
        "reason": "runbook intake-test-errors",
    }
    assert first == (200, {"incidents": [expected]})
    assert second == (200, {"incidents": [expected]})
    assert await history(intake.client, incident) == [
        "started",
        f"signal:{FIRING_SIGNAL}",
        f"signal:{FIRING_SIGNAL}",
    ]


async def test_the_incident_starts_with_its_runbook_link_summary_and_search_attributes(intake):
    body = notification()
    service = body["commonLabels"]["service"]

    await intake.post(body)

    incident = incident_workflow_id(body["groupKey"], ALERTNAME)
    started = await started_input(intake.client, incident)
    assert started.runbook.name == "intake-test-errors"
    assert started.ui_url == f"{UI}/namespaces/default/workflows/{incident}"
    assert started.notification.group_key == body["groupKey"]
    assert started.notification.labels["service"] == service
    description = await intake.client.get_workflow_handle(incident).describe()
    assert description.workflow_type == "IncidentRunbook"
    assert description.status == WorkflowExecutionStatus.RUNNING
    attributes = description.typed_search_attributes
    assert attributes.get(sa.DEPLOY_SERVICE) == service  # from the alert's label
    assert attributes.get(sa.DEPLOY_ENVIRONMENT) == "intake-test-env"  # from the runbook
    assert attributes.get(sa.DEPLOY_STRATEGY) == "incident"
    assert attributes.get(sa.DEPLOY_PHASE) == "Triggered"
    assert await description.static_summary() == (
        f"incident: {ALERTNAME} on {service} intake-test-env (runbook intake-test-errors)"
    )


async def test_a_resolution_signals_the_open_incident(intake):
    body = notification()
    await intake.post(body)

    status, answer = await intake.post(resolved(body))

    incident = incident_workflow_id(body["groupKey"], ALERTNAME)
    assert (status, answer) == (
        200,
        {
            "incidents": [
                {"workflowId": incident, "action": "signalled", "reason": "alert group resolved"}
            ]
        },
    )
    assert await history(intake.client, incident) == [
        "started",
        f"signal:{FIRING_SIGNAL}",
        f"signal:{RESOLVED_SIGNAL}",
    ]
    handle = intake.client.get_workflow_handle(incident)
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            attributes = event.workflow_execution_signaled_event_attributes
            if attributes.signal_name == RESOLVED_SIGNAL:
                [sent] = await intake.client.data_converter.decode(
                    attributes.input.payloads, [AlertNotification]
                )
                assert isinstance(sent, AlertNotification)
                assert sent.status == "resolved"
                assert [a.status for a in sent.alerts] == ["resolved"]


async def test_a_resolution_with_no_open_incident_is_ignored_and_starts_nothing(intake):
    body = resolved(notification())

    status, answer = await intake.post(body)

    incident = incident_workflow_id(body["groupKey"], ALERTNAME)
    assert (status, answer) == (
        200,
        {
            "incidents": [
                {
                    "workflowId": incident,
                    "action": "ignored",
                    "reason": "no open incident for this alert group",
                }
            ]
        },
    )
    with pytest.raises(RPCError) as caught:
        await intake.client.get_workflow_handle(incident).describe()
    assert caught.value.status == RPCStatusCode.NOT_FOUND


async def test_an_alert_no_runbook_matches_is_ignored_and_starts_nothing(intake):
    body = notification(alertname="SomethingElse")

    status, answer = await intake.post(body)

    incident = incident_workflow_id(body["groupKey"], "SomethingElse")
    [ignored] = answer["incidents"]
    assert (status, ignored["workflowId"], ignored["action"]) == (200, incident, "ignored")
    assert ignored["reason"].startswith("no runbook matches labels {alertname=SomethingElse, ")
    with pytest.raises(RPCError) as caught:
        await intake.client.get_workflow_handle(incident).describe()
    assert caught.value.status == RPCStatusCode.NOT_FOUND


async def test_a_group_that_fires_again_after_its_incident_closed_opens_a_new_run(intake):
    body = notification()
    await intake.post(body)
    incident = incident_workflow_id(body["groupKey"], ALERTNAME)
    handle = intake.client.get_workflow_handle(incident)
    first_run = (await handle.describe()).run_id
    await handle.terminate("incident closed")

    late = await intake.post(resolved(body))
    again = await intake.post(body)

    assert late[1]["incidents"][0]["action"] == "ignored", "a closed run takes no signal"
    assert again[1]["incidents"][0]["action"] == "started-or-signalled"
    second_run = (await handle.describe()).run_id
    assert second_run != first_run
    assert await history(intake.client, incident, second_run) == [
        "started",
        f"signal:{FIRING_SIGNAL}",
    ]


async def test_simultaneous_notifications_of_a_group_from_two_replicas_open_one_incident(intake):
    body = notification()

    answers = await asyncio.gather(*(intake.post(body) for _ in range(6)))

    assert {status for status, _ in answers} == {200}
    incident = incident_workflow_id(body["groupKey"], ALERTNAME)
    assert await history(intake.client, incident) == ["started"] + [f"signal:{FIRING_SIGNAL}"] * 6


async def test_a_bad_payload_starts_nothing(intake):
    body = notification()
    body["alerts"][0]["labels"]["severity"] = 3

    status, answer = await intake.post(body)

    assert (status, answer["problems"]) == (
        400,
        ["alerts[0].labels.severity: Input should be a valid string"],
    )
    incident = incident_workflow_id(body["groupKey"], ALERTNAME)
    with pytest.raises(RPCError) as caught:
        await intake.client.get_workflow_handle(incident).describe()
    assert caught.value.status == RPCStatusCode.NOT_FOUND


async def test_temporal_unreachable_is_503_naming_its_address(temporal_env):
    closed = f"127.0.0.1:{free_port()}"
    async with (
        running(intake_app(temporal_env, "intake-unreachable", address=closed)) as base,
        aiohttp.ClientSession() as session,
    ):
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with session.post(
            f"{base}{serve.ALERTMANAGER_PATH}", json=notification(), headers=headers
        ) as resp:
            answer = await resp.json()

    assert resp.status == 503
    assert answer["error"].startswith("Temporal is unreachable, retry later: ")
    assert closed in answer["error"]


async def test_a_real_alertmanager_opens_and_resolves_an_incident(
    temporal_env, alertmanager_server: StartAlertmanager
):
    port = free_port()
    url = f"http://127.0.0.1:{port}{serve.ALERTMANAGER_PATH}"
    app = intake_app(temporal_env, "intake-alertmanager")
    service = f"svc-{uuid.uuid4().hex[:8]}"
    labels = {"alertname": ALERTNAME, "service": service, "severity": "critical"}
    client = temporal_env.client
    async with running(app, port):
        am = await asyncio.to_thread(alertmanager_server, url, token=TOKEN, group_interval="1s")
        group_key = f'{{}}:{{alertname="{ALERTNAME}", service="{service}"}}'
        incident = incident_workflow_id(group_key, ALERTNAME)
        handle = client.get_workflow_handle(incident)
        try:
            await asyncio.to_thread(am.post_alert, labels, {"summary": "errors"})

            async def signalled(name: str) -> bool:
                opened = await open_incident(client, incident)
                return opened and f"signal:{name}" in await history(client, incident)

            await poll(lambda: signalled(FIRING_SIGNAL), "the incident Alertmanager opened", 20)
            started = await started_input(client, incident)
            assert started.notification.labels == labels

            await asyncio.to_thread(am.post_alert, labels, {"summary": "errors"}, datetime.now(UTC))
            await poll(lambda: signalled(RESOLVED_SIGNAL), "the resolution from Alertmanager", 20)
        finally:
            try:
                await handle.terminate("test over")
            except RPCError as exc:
                if exc.status != RPCStatusCode.NOT_FOUND:
                    raise
