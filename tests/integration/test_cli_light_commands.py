"""The commands that only talk to Temporal, against the dev server and a real rollout: they
answer as before while importing no spec, model or workflow module (so they start in about
the time the SDK's client takes to import; bench/cli_latency.py measures it)."""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

import pytest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.contrib.pydantic import pydantic_data_converter

from starters.errors import EXIT_INVALID, EXIT_OK
from tests.fixtures.cli import run_audited
from tests.fixtures.harness import poll, worker
from tests.workflows.harness import Stubs, rollout, wait_for_status
from workflows.rollouts.canary import CanaryRollout
from workflows.rollouts.models import RolloutPhase, RolloutStatus

pytestmark = pytest.mark.integration


async def test_status_list_verbs_and_history_of_a_rollout_import_nothing_heavy(temporal_env):
    address = temporal_env.client.service_client.config.target_host
    client = await Client.connect(address, data_converter=pydantic_data_converter)  # real time
    queue = f"it-{uuid.uuid4().hex[:8]}"
    service = f"svc-{uuid.uuid4().hex[:6]}"
    spec = rollout([{"setWeight": 20}, {"pause": {}}, {"setWeight": 100}], service=service)
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": address,
        "DEPLOYFLOW_TASK_QUEUE": queue,
        "DEPLOYFLOW_USER": "alice",
    }

    async def cli(*argv: str, code: int = EXIT_OK) -> tuple[str, str]:
        exited, out, err, heavy = await run_audited(env, *argv)
        assert exited == code, err
        assert heavy == [], f"deployflow {' '.join(argv)} imported {heavy}"
        return out, err

    async with worker(client, [CanaryRollout], Stubs().activities(), task_queue=queue):
        handle = await client.start_workflow(
            CanaryRollout.run, spec, id=spec.workflow_id, task_queue=queue
        )
        await wait_for_status(handle, lambda s: s.phase is RolloutPhase.PAUSED)

        out, _ = await cli("rollout", "status", service)
        assert out.startswith(f"{handle.id}: Paused — pause step: waiting until promoted\n")
        assert "  weights   stable 80 % / canary 20 %\n" in out
        out, _ = await cli("rollout", "status", service, "--json")
        assert RolloutStatus.model_validate_json(out) == await handle.query(CanaryRollout.status)

        out, _ = await cli("rollout", "list", "--json")
        [row] = [r for r in json.loads(out) if r["workflowId"] == handle.id]
        assert (row["service"], row["phase"], row["status"]) == (service, "Paused", "RUNNING")

        out, _ = await cli("rollout", "pause", service, "--reason", "looking at logs")
        assert out == f"{handle.id}: paused: no further step starts until resume\n"
        _, err = await cli("rollout", "pause", service, code=EXIT_INVALID)
        assert "pause rejected: already paused: paused by operator by alice: looking at logs" in err
        out, _ = await cli("rollout", "resume", service)
        assert out == f"{handle.id}: resumed\n"
        out, _ = await cli("rollout", "abort", service, "--env", spec.spec.environment)
        assert "aborting: traffic goes back to stable" in out
        result = await handle.result()
        assert result.outcome is RolloutPhase.ABORTED

        out, _ = await cli("rollout", "status", service)
        assert out.startswith(f"{handle.id}: Aborted — ")

        async def listed() -> list[dict[str, Any]]:
            out, _ = await cli("history", service, "--json")
            rows: list[dict[str, Any]] = json.loads(out)
            return rows

        # Visibility catches up with the close shortly after.
        rows = await poll(listed, "the aborted rollout in history", 20, every_s=0.2)
        assert (rows[0]["version"], rows[0]["outcome"]) == ("v2", "Aborted")
        assert rows[0]["operators"] == [result.reason]
        out, _ = await cli("rollout", "list", "--all", "--json")
        [row] = [r for r in json.loads(out) if r["workflowId"] == handle.id]
        assert (row["phase"], row["status"]) == ("Aborted", "COMPLETED")
        description = await handle.describe()
        assert description.status == WorkflowExecutionStatus.COMPLETED  # the UI: "Completed"
        out, _ = await cli("incident", "list")
        assert out

        out, _ = await cli("ui-views", "--service", service, "--json")
        found = {
            view["name"]: [wf.id async for wf in client.list_workflows(view["query"])]
            for view in json.loads(out)["views"]
        }
        assert found.pop(f"Rollouts: aborted ({service})") == [handle.id]
        assert set(map(len, found.values())) == {0}  # each query valid, none matches
