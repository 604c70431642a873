"""`deployflow serve` (a real process) on the mTLS-only Temporal with the codec on: the
incident it opens is stored encrypted, and reads back with the keys."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment

from tests.fixtures.cli import REPO
from tests.fixtures.harness import poll
from tests.fixtures.nginx import stop_process
from tests.fixtures.parts import free_port
from tests.fixtures.tls import TLSProxy
from tests.integration.test_secure_connection import cli_env
from workers.codec import ENCODING, EncryptionCodec
from workers.codec_keys import parse_keys
from workflows.incidents.models import IncidentInput

pytestmark = pytest.mark.integration

FIRING = Path(__file__).resolve().parents[1] / "data" / "alertmanager" / "firing.json"
TOKEN = "serve-secured-token"
RUNBOOK = """
apiVersion: deployflow/v1
kind: Runbook
metadata: {name: secured}
spec:
  match: {alertname: SecuredErrors}
  environment: secured-env
  steps:
    - page: {}
"""


@dataclass
class Serve:
    port: int
    key: str
    log: Path


@pytest.fixture
def secured_serve(temporal_tls: TLSProxy, tmp_path: Path) -> Iterator[Serve]:
    """`deployflow serve` on the mTLS endpoint with a codec key."""
    key = f"k1:{base64.b64encode(os.urandom(32)).decode()}"
    (tmp_path / "runbook.yaml").write_text(RUNBOOK)
    port = free_port()
    env = cli_env(temporal_tls.env(temporal_tls.mtls_address, client=True))
    env |= {"DEPLOYFLOW_CODEC_KEY": key, "DEPLOYFLOW_WEBHOOK_TOKEN": TOKEN}
    command = [sys.executable, "-m", "starters.cli", "serve", "--listen", f"127.0.0.1:{port}"]
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*command, "--runbooks", str(tmp_path / "runbook.yaml")],
            env=env,
            cwd=REPO,
            stdout=out,
            stderr=out,
        )
    try:
        yield Serve(port, key, log)
    finally:
        stop_process(process)


async def test_serve_opens_an_encrypted_incident_through_mtls(
    secured_serve: Serve, temporal_env: WorkflowEnvironment
):
    body = json.loads(FIRING.read_text())
    service = f"svc-{uuid.uuid4().hex[:8]}"
    labels = {"alertname": "SecuredErrors", "service": service}
    body |= {"groupKey": f'{{}}:{{service="{service}"}}', "commonLabels": labels}
    body["groupLabels"] = labels
    for alert in body["alerts"]:
        alert["labels"] = dict(labels)
    async with aiohttp.ClientSession() as session:

        async def post() -> dict[str, object] | None:
            headers = {"Authorization": f"Bearer {TOKEN}"}
            url = f"http://127.0.0.1:{secured_serve.port}/alerts/alertmanager"
            try:
                async with session.post(url, json=body, headers=headers) as response:
                    return await response.json() if response.status == 200 else None
            except aiohttp.ClientConnectionError:
                return None

        answer = await poll(post, "serve opened the incident", deadline_s=30)
    assert '"security": "mTLS"' in secured_serve.log.read_text()
    [incident] = answer["incidents"]
    handle = temporal_env.client.get_workflow_handle(incident["workflowId"])
    try:
        async for event in handle.fetch_history_events():
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
                [stored] = event.workflow_execution_started_event_attributes.input.payloads
                break
        assert stored.metadata["encoding"] == ENCODING
        [plain] = await EncryptionCodec(parse_keys(secured_serve.key, "test")).decode([stored])
        opened = IncidentInput.model_validate_json(plain.data)
        assert opened.notification.labels == labels
    finally:
        await handle.terminate("test over")
