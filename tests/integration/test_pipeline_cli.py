"""The pipeline from the CLI: start with --wait, approve with --as, on the dev server."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from tests.fixtures.cli import finish, run_cli, spawn
from tests.fixtures.harness import poll, worker
from tests.workflows.harness import Stubs
from tests.workflows.test_pipeline import stage
from workflows.promotion.pipeline import PromotionPipeline
from workflows.rollouts.registry import BY_STRATEGY

pytestmark = pytest.mark.integration


async def test_pipeline_runs_to_production_with_an_approval_from_the_cli(
    temporal_env, tmp_path: Path
):
    address = temporal_env.client.service_client.config.target_host
    client = await Client.connect(address, data_converter=pydantic_data_converter)
    queue = f"it-{uuid.uuid4().hex[:8]}"
    service = f"svc-{uuid.uuid4().hex[:6]}"
    spec = {
        "apiVersion": "deployflow/v1",
        "kind": "Pipeline",
        "metadata": {"name": service},
        "spec": {
            "service": service,
            "stages": [
                stage("dev"),
                stage("staging", requiredSoakTime="1s"),
                stage("production", approval={"approvers": ["alice"], "minApprovals": 1}),
            ],
        },
    }
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(spec))
    env = {**os.environ, "TEMPORAL_ADDRESS": address, "DEPLOYFLOW_TASK_QUEUE": queue}
    stubs = Stubs()
    async with worker(
        client, [PromotionPipeline, *BY_STRATEGY.values()], stubs.activities(), task_queue=queue
    ):
        waiting = await spawn(env, "pipeline", "start", str(path), "--version", "v7", "--wait")

        async def gated() -> bool:
            code, out, _ = await run_cli(env, "pipeline", "status", service, "--json")
            return code == 0 and json.loads(out)["stages"][2]["state"] == "awaiting-approval"

        await poll(gated, "production awaiting an approval", 30, every_s=0.2)
        code, out, err = await run_cli(env, "pipeline", "status", service)
        assert code == 0, err
        assert out.startswith(f"pipeline-{service}: Running v7 — ")
        assert "  production     awaiting-approval\n" in out
        code, _, err = await run_cli(env, "pipeline", "start", str(path), "--version", "v7")
        assert code == 0, err
        assert f"pipeline-{service}: v7 runs in this pipeline" in err
        code, _, err = await run_cli(env, "pipeline", "approve", service, "--as", "mallory")
        assert code == 2
        assert "mallory may not approve production (approvers: alice)" in err
        code, out, err = await run_cli(
            env, "pipeline", "approve", service, "--as", "alice", "--comment", "ship it"
        )
        assert code == 0, err
        assert "production approved by alice" in out
        code_b, out_b, err_b = await finish(waiting)
    assert code_b == 0, err_b
    assert f"pipeline-{service}: Succeeded v7" in out_b
    assert stubs.canary_weights == [50, 100, 100] * 3

    async def listed() -> list[dict[str, Any]]:
        code, out, err = await run_cli(env, "history", service, "--env", "production", "--json")
        assert code == 0, err
        rows: list[dict[str, Any]] = json.loads(out)
        return rows

    # Visibility catches up with the close shortly after.
    rows = await poll(listed, "the promoted pipeline in history", 20, every_s=0.2)
    assert rows[0]["version"] == "v7"
    assert rows[0]["outcome"] == "Promoted"
    assert rows[0]["approvals"][0].startswith("approved by alice at ")
