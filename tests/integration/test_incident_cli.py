"""`deployflow incident …` as CI and on-call people run it: a subprocess against the dev
server, steering an open incident (stub pager and Slack; the workflow is real)."""

from __future__ import annotations

import json
import os

import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from starters.errors import EXIT_INVALID, EXIT_OK
from tests.fixtures.cli import run_cli
from tests.workflows.incident_harness import (
    Notifiers,
    incident_worker,
    notification,
    runbook,
)
from workflows.incidents.models import (
    FIRING_SIGNAL,
    IncidentInput,
    IncidentPhase,
    incident_workflow_id,
)
from workflows.incidents.runbook import IncidentRunbook

pytestmark = pytest.mark.integration


async def test_on_call_acknowledges_and_resolves_an_incident_from_the_cli(temporal_env):
    address = temporal_env.client.service_client.config.target_host
    client = await Client.connect(address, data_converter=pydantic_data_converter)
    env = {**os.environ, "TEMPORAL_ADDRESS": address, "DEPLOYFLOW_USER": "alice"}
    stubs = Notifiers()
    alert = notification()
    service = f"svc-{alert.group_key[-10:-2]}"
    alert.common_labels["service"] = service
    book = runbook([{"page": {}}])
    async with incident_worker(temporal_env, stubs) as tq:
        handle = await client.start_workflow(
            IncidentRunbook.run,
            IncidentInput(runbook=book, notification=alert),
            id=incident_workflow_id(alert.group_key, "CheckoutErrors"),
            task_queue=tq,
            start_signal=FIRING_SIGNAL,
            start_signal_args=[alert],
        )
        code, out, err = await run_cli(env, "incident", "list", "--json")
        assert code == EXIT_OK, err
        assert handle.id in [row["workflowId"] for row in json.loads(out)]

        code, out, err = await run_cli(env, "incident", "ack", service, "--reason", "on it")
        assert code == EXIT_OK, err
        assert "acknowledged" in out

        code, out, err = await run_cli(env, "incident", "ack", service)
        assert code == EXIT_INVALID
        assert "acknowledge rejected: already acknowledged by alice" in err

        code, out, err = await run_cli(env, "incident", "status", handle.id, "--json")
        assert code == EXIT_OK, err
        assert json.loads(out)["phase"] == IncidentPhase.ACKNOWLEDGED.value

        code, out, err = await run_cli(env, "incident", "status", service)
        assert code == EXIT_OK, err
        assert out.startswith(f"{handle.id}: Acknowledged — ")
        assert "  alert firing, 1 notification(s)\n" in out
        assert "acknowledged by alice after " in out

        code, out, err = await run_cli(env, "incident", "resolve", handle.id[:24])
        assert code == EXIT_OK, err
        result = await handle.result()

        code, out, err = await run_cli(env, "incident", "ack", "no-such-incident")
        assert code == EXIT_INVALID
        assert "NAME no-such-incident: no open incident" in err
    assert result.acknowledged_by == "alice"
    assert result.resolved_by == "alice"
    assert [p.action for p in stubs.pages] == ["trigger", "acknowledge", "resolve"]


async def test_serve_refuses_to_start_without_a_token_or_with_bad_runbooks(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DEPLOYFLOW_WEBHOOK_TOKEN"}
    good = tmp_path / "runbooks.yaml"
    good.write_text(
        "apiVersion: deployflow/v1\nkind: Runbook\nmetadata: {name: x}\n"
        "spec: {steps: [{page: {}}]}\n"
    )
    code, _, err = await run_cli(env, "serve", "--runbooks", str(good), timeout=30)
    assert code == EXIT_INVALID
    assert "DEPLOYFLOW_WEBHOOK_TOKEN" in err
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: deployflow/v1\nkind: Runbook\nmetadata: {name: x}\n"
        "spec: {steps: [{page: {}}, {notify: {text: '{{nope}}'}}]}\n"
    )
    env["DEPLOYFLOW_WEBHOOK_TOKEN"] = "t"
    code, _, err = await run_cli(env, "serve", "--runbooks", str(bad), timeout=30)
    assert code == EXIT_INVALID
    assert "spec.steps[1].notify.text: unknown placeholder {{nope}}" in err
    assert "Traceback" not in err
