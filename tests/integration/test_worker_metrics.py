"""``deployflow worker --metrics-listen --health-listen`` as a real process: a real
Prometheus scrapes the SDK's metrics and deployflow's from it after a canary whose analysis
queries that same Prometheus; the example alert rules load and stay quiet for a worker that
polls; readiness names what is missing."""

from __future__ import annotations

import contextlib
import json
import os
import urllib.parse
import uuid
from pathlib import Path

import pytest
import yaml
from temporalio.client import Client, WorkflowFailureError

from tests.fixtures.cli import run_cli
from tests.fixtures.harness import poll
from tests.fixtures.parts import free_port
from tests.fixtures.prometheus import StartPrometheus
from tests.fixtures.worker import ActivityCaller, StartWorker
from workers.health import Readiness

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
WORKER_RULES = REPO / "examples" / "prometheus" / "worker-rules.yml"
JOB = "deployflow-worker"


def canary(queue: str, prometheus: str, directory: Path) -> Path:
    """50 %, an analysis of two measurements (the worker's own activity pollers, as
    Prometheus scraped them), 100 %; on the nop router."""
    pollers = (
        f'sum(temporal_num_pollers{{job="{JOB}", task_queue="{queue}", '
        'poller_type="activity_task"})'
    )
    spec = {
        "apiVersion": "deployflow/v1",
        "kind": "Rollout",
        "metadata": {"name": "checkout"},
        "spec": {
            "service": "checkout",
            "environment": f"it{uuid.uuid4().hex[:8]}",
            "version": "v2",
            "progressDeadlineSeconds": 60,
            "router": {"nop": {"stable": ["10.0.0.1:80"], "canary": ["10.0.0.2:80"]}},
            "strategy": {
                "canary": {
                    "steps": [
                        {"setWeight": 50},
                        {"analysis": {"templates": [{"templateName": "pollers"}]}},
                        {"setWeight": 100},
                    ]
                }
            },
            "analysisTemplates": [
                {
                    "name": "pollers",
                    "metrics": [
                        {
                            "name": "pollers",
                            "interval": "1s",
                            "count": 2,
                            "successCondition": "result > 0",
                            "provider": {"prometheus": {"address": prometheus, "query": pollers}},
                        }
                    ],
                }
            ],
        },
    }
    path = directory / "rollout.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


async def test_prometheus_scrapes_the_sdk_metrics_and_ours_after_a_rollout(
    worker_process: StartWorker, prometheus_server: StartPrometheus, temporal_env, tmp_path
):
    queue = f"metrics-{uuid.uuid4().hex[:8]}"
    worker = worker_process(queue)
    prom = prometheus_server([worker.metrics_target], rules=WORKER_RULES.read_text(), job=JOB)
    prom.wait_for_targets_up()
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": temporal_env.client.service_client.config.target_host,
        "DEPLOYFLOW_TASK_QUEUE": queue,
    }
    spec = canary(queue, prom.url, tmp_path)
    code, out, err = await run_cli(env, "rollout", "start", str(spec), "--wait", "--json")
    assert code == 0, err
    assert json.loads(out.splitlines()[-1])["outcome"] == "Promoted"

    def value(query: str) -> float | None:
        result = prom.api(f"query?query={urllib.parse.quote(query)}")["result"]
        return float(result[0]["value"][1]) if result else None

    on = f'job="{JOB}",task_queue="{queue}"'
    expected = {
        # ours: from the workflow (replay-safe meter) and from the activity interceptor
        f'deployflow_rollout_phases_total{{{on},strategy="canary",phase="Progressing"}}': 1,
        f'deployflow_rollout_phases_total{{{on},strategy="canary",phase="Promoted"}}': 1,
        f'deployflow_analysis_measurements_total{{{on},provider="prometheus",phase="Successful"}}': 2,
        # 50 %, 100 %, and the promotion's 100 %
        f'deployflow_traffic_shift_duration_seconds_count{{{on},router="nop",outcome="ok"}}': 3,
        # the SDK's: activity latencies by type, pollers, polls
        f'temporal_activity_execution_latency_seconds_count{{{on},activity_type="measure"}}': 2,
        f'temporal_activity_execution_latency_seconds_count{{{on},activity_type="set_weight"}}': 3,
    }

    def scraped() -> dict[str, float | None]:
        return {q: value(q) for q in expected}

    async def all_scraped() -> bool:
        return scraped() == expected

    with contextlib.suppress(pytest.fail.Exception):
        await poll(all_scraped, "ours and the SDK's metrics in Prometheus", 15)
    assert scraped() == expected
    assert value(f'sum(temporal_num_pollers{{{on},poller_type="workflow_task"}})') >= 1
    assert value(f'sum(temporal_long_request_total{{{on},operation="PollActivityTaskQueue"}})') > 0
    shift = value(f'deployflow_traffic_shift_duration_seconds_sum{{{on},router="nop"}}')
    assert 0 < shift < 3, "three nop shifts take milliseconds, not seconds"
    # Which bucket a shift lands in depends on the machine's load; what holds everywhere:
    # buckets below the SDK's first (50 ms), so a reload's milliseconds show, and all three
    # shifts counted, cumulatively, in ascending buckets.
    buckets = prom.api(
        "query?query="
        + urllib.parse.quote(
            f'deployflow_traffic_shift_duration_seconds_bucket{{{on},router="nop",outcome="ok"}}'
        )
    )["result"]
    counts = sorted((float(b["metric"]["le"]), float(b["value"][1])) for b in buckets)
    assert {0.001, 0.005, 0.01, 0.025} <= {le for le, _ in counts}, "buckets for milliseconds"
    assert [n for _, n in counts] == sorted(n for _, n in counts), "cumulative buckets"
    assert counts[-1] == (float("inf"), 3)

    groups = prom.api("rules")["groups"]
    rules = {r["name"]: r for g in groups for r in g["rules"]}
    assert set(rules) == {
        "DeployflowWorkerDown",
        "DeployflowWorkersAbsent",
        "DeployflowWorkerNotPolling",
    }
    assert {r["health"] for r in rules.values()} == {"ok"}
    assert {n: r["state"] for n, r in rules.items()} == {n: "inactive" for n in rules}, rules


async def test_health_says_alive_and_ready_once_the_worker_polls(worker_process: StartWorker):
    queue = f"health-{uuid.uuid4().hex[:8]}"
    worker = worker_process(queue)  # returns once /readyz answered 200
    assert worker.health("/healthz") == (200, {"status": "alive"})
    assert worker.health("/readyz") == (200, {"status": "ready", "taskQueue": queue})


async def test_readiness_names_a_queue_nobody_polls_and_an_unreachable_server(temporal_env):
    address = temporal_env.client.service_client.config.target_host
    client = await Client.connect(address)
    problem = await Readiness(client, "queue-nobody-polls").problem()
    assert problem == (
        f"Temporal does not list {client.identity} as a poller of queue-nobody-polls "
        "(workflow and activity tasks) yet"
    )

    nowhere = f"127.0.0.1:{free_port()}"
    lazy = await Client.connect(nowhere, lazy=True)
    problem = await Readiness(lazy, "deployflow").problem()
    assert problem is not None
    assert problem.startswith(f"Temporal at {nowhere} does not answer its health check: ")

    stopping = Readiness(client, "queue-nobody-polls", stopping=True)
    assert await stopping.problem() == "shutting down: no longer polling"


def sample(metrics: str, name: str, **labels: str) -> float | None:
    """The value of the series ``name`` with (at least) ``labels`` in a /metrics text."""
    for line in metrics.splitlines():
        series, _, value = line.rpartition(" ")
        if series.startswith(name + "{") and all(f'{k}="{v}"' in series for k, v in labels.items()):
            return float(value)
    return None


async def test_pages_sent_and_failed_are_counted_by_action(
    worker_process: StartWorker, activity_caller: ActivityCaller, notify_env
):
    queue = f"pages-{uuid.uuid4().hex[:8]}"
    worker = worker_process(queue, env=notify_env.env)
    trigger = {"action": "trigger", "dedupKey": "checkout-down", "summary": "checkout is down"}
    handle = await activity_caller.start(queue, "page", trigger)
    assert (await handle.result())["status"] == "success"
    assert len(notify_env.pagerduty.incidents()) == 1

    notify_env.pagerduty.fail(400)  # PagerDuty refuses the event: not retried
    handle = await activity_caller.start(queue, "page", {**trigger, "action": "resolve"})
    with pytest.raises(WorkflowFailureError):
        await handle.result()

    metrics = worker.metrics()
    assert sample(metrics, "deployflow_pages_total", action="trigger", outcome="ok") == 1
    assert sample(metrics, "deployflow_pages_total", action="resolve", outcome="failed") == 1
    assert sample(metrics, "deployflow_pages_total", action="resolve", outcome="ok") is None
