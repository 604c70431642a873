"""Argo analysis features in the real CanaryRollout (time skipping): a secret arg that never
reaches the history, dry-run metrics that never decide, NaN for conditions that ask for it."""

from __future__ import annotations

import base64
import math
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from activities.metrics.activities import measure
from tests.fixtures.harness import worker
from tests.unit.test_web_provider import Answer, WebServer, serve
from tests.workflows.harness import ERROR_RATE_TEMPLATE, Stubs, canary_worker, rollout, start
from workflows.analysis.run import AnalysisPhase
from workflows.rollouts.canary import CanaryRollout
from workflows.rollouts.models import RolloutPhase, RolloutResult

SECRET = "tok-3f9a1c"  # what the worker's environment holds; never in the history
ANALYSIS = {"analysis": {"templates": [{"templateName": "web-check"}]}}


@pytest.fixture
def web() -> Iterator[WebServer]:
    yield from serve()


async def test_a_secret_arg_is_sent_by_the_worker_and_never_enters_the_history(
    temporal_env, web: WebServer, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("DEPLOYFLOW_SECRET_HEALTH_API_TOKEN", SECRET)
    web.answer = Answer(body=b'{"data": {"ok": true}}')
    template = {
        "name": "web-check",
        "args": [
            {
                "name": "api-token",
                "valueFrom": {"secretKeyRef": {"name": "health-api", "key": "token"}},
            }
        ],
        "metrics": [
            {
                "name": "webmetric",
                "successCondition": "result == true",
                "provider": {
                    "web": {
                        "url": f"{web.url}/check?service={{{{service}}}}",
                        "headers": [{"key": "Authorization", "value": "Bearer {{args.api-token}}"}],
                        "jsonPath": "{$.data.ok}",
                    }
                },
            }
        ],
    }
    stubs = Stubs()
    spec = rollout([{"setWeight": 20}, ANALYSIS, {"setWeight": 100}], analysisTemplates=[template])
    set_weight, get_weights, _ = stubs.activities()
    task_queue = f"tq-{uuid.uuid4().hex}"
    async with worker(
        temporal_env, [CanaryRollout], [set_weight, get_weights, measure], task_queue=task_queue
    ):
        handle = await start(temporal_env, task_queue, spec)
        result = await handle.result()
    assert result.outcome is RolloutPhase.PROMOTED
    assert web.seen[0]["headers"]["authorization"] == f"Bearer {SECRET}"
    assert web.seen[0]["path"] == "/check?service=checkout"
    history = payload_text((await handle.fetch_history()).to_json_dict())
    assert SECRET not in history
    assert "{{args.api-token}}" in history  # the reference travels, not the value


def payload_text(node: Any) -> str:
    """Every payload of a history (JSON form: base64 ``data``) decoded, as one text."""
    if isinstance(node, dict):
        found = [payload_text(v) for k, v in node.items() if k != "data"]
        if isinstance(node.get("data"), str):
            found.append(base64.b64decode(node["data"]).decode(errors="replace"))
        return "\n".join(found)
    if isinstance(node, list):
        return "\n".join(payload_text(v) for v in node)
    return ""


async def step_analysis(temporal_env, template: dict[str, Any], stubs: Stubs) -> RolloutResult:
    """A canary of one shift and one step analysis with ``template``, run to its end."""
    spec = rollout(
        [{"setWeight": 20}, {"analysis": {"templates": [{"templateName": "error-rate"}]}}],
        analysisTemplates=[template],
    )
    async with canary_worker(temporal_env, stubs) as tq:
        result: RolloutResult = await (await start(temporal_env, tq, spec)).result()
    return result


async def test_a_failing_dry_run_metric_is_shown_but_does_not_roll_back(temporal_env):
    template = {
        **ERROR_RATE_TEMPLATE,
        "dryRun": [{"metricName": "latency"}],
        "metrics": [
            ERROR_RATE_TEMPLATE["metrics"][0] | {"count": 2},
            ERROR_RATE_TEMPLATE["metrics"][0] | {"name": "latency", "count": 2},
        ],
    }
    # error-rate measures 0.001 (fine); latency measures 0.5 (fails its condition).
    stubs = Stubs(measure_values=lambda n: [0.001] if n % 2 else [0.5])
    result = await step_analysis(temporal_env, template, stubs)
    assert result.outcome is RolloutPhase.PROMOTED
    [run] = result.analysis_runs
    phases = {m.name: (m.phase, m.dry_run) for m in run.metrics}
    assert run.phase is AnalysisPhase.SUCCESSFUL
    assert phases["error-rate"] == (AnalysisPhase.SUCCESSFUL, False)
    assert phases["latency"] == (AnalysisPhase.FAILED, True)


async def test_nan_reaches_a_condition_that_handles_it(temporal_env):
    template = {
        **ERROR_RATE_TEMPLATE,
        "metrics": [
            ERROR_RATE_TEMPLATE["metrics"][0]
            | {"count": 1, "successCondition": "isNaN(result) || result < 0.01"}
        ],
    }
    stubs = Stubs(measure_values=lambda n: [math.nan])
    result = await step_analysis(temporal_env, template, stubs)
    assert result.outcome is RolloutPhase.PROMOTED
    assert stubs.measure_inputs[0].raw_values is True
    [measurement] = result.analysis_runs[0].metrics[0].measurements
    assert measurement.phase is AnalysisPhase.SUCCESSFUL
    assert math.isnan(measurement.value[0])
