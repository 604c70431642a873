"""The whole path on real processes: the CLI starts a canary on the dev server, a worker
runs it against NGINX and Prometheus, and demo-service instances are the two versions."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fixtures.cli import run_cli
from tests.fixtures.harness import poll

pytestmark = pytest.mark.integration


@dataclass
class Stack:
    nginx_url: str
    env: dict[str, str]
    spec: dict[str, Any]
    stable: Any
    canary: Any


@pytest.fixture
def load(request: pytest.FixtureRequest) -> Iterator[Any]:
    """Background requests through NGINX (bounded: stops with the test, max 60 s)."""
    stop = threading.Event()
    threads: list[threading.Thread] = []

    def start(url: str) -> None:
        def loop() -> None:
            deadline = 60 / 0.02
            while not stop.wait(0.02) and deadline > 0:
                deadline -= 1
                with contextlib.suppress(urllib.error.URLError, OSError):
                    urllib.request.urlopen(url, timeout=2).read()

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        threads.append(thread)

    yield start
    stop.set()
    for thread in threads:
        thread.join(timeout=5)


@pytest.fixture
def stack(demo_service, prometheus_server, nginx_factory, worker_queue, load) -> Stack:
    stable = demo_service("v1")
    canary = demo_service("v2")
    prometheus = prometheus_server([stable.target, canary.target])
    prometheus.wait_for_targets_up()
    nginx = nginx_factory(stable=[stable.target], canary=[canary.target])
    load(nginx.url)
    address, queue = worker_queue
    router = nginx.router_spec(stable=[stable.target], canary=[canary.target])
    ratio = (
        'sum(rate(http_requests_total{{version="{{{{version}}}}",code=~"5.."}}[{w}])) '
        '/ sum(rate(http_requests_total{{version="{{{{version}}}}"}}[{w}]))'
    ).format(w="4s")
    spec = {
        "apiVersion": "deployflow/v1",
        "kind": "Rollout",
        "metadata": {"name": "checkout"},
        "spec": {
            "service": "checkout",
            "environment": f"it{uuid.uuid4().hex[:6]}",
            "version": "v2",
            "progressDeadlineSeconds": 60,
            "router": {"nginx": router.model_dump(mode="json")},
            "strategy": {
                "canary": {
                    "steps": [
                        {"setWeight": 30},
                        {"analysis": {"templates": [{"templateName": "error-rate"}]}},
                        {"setWeight": 60},
                        {"pause": {"duration": "1s"}},
                        {"setWeight": 100},
                    ]
                }
            },
            "analysisTemplates": [
                {
                    "name": "error-rate",
                    "metrics": [
                        {
                            "name": "error-rate",
                            "initialDelay": "3s",
                            "interval": "1s",
                            "count": 3,
                            "successCondition": "result < 0.05",
                            "provider": {"prometheus": {"address": prometheus.url, "query": ratio}},
                        }
                    ],
                }
            ],
        },
    }
    env = {**os.environ, "TEMPORAL_ADDRESS": address, "DEPLOYFLOW_TASK_QUEUE": queue}
    return Stack(nginx.url, env, spec, stable, canary)


async def deployflow(stack: Stack, tmp_path: Path, *args: str) -> tuple[int, str, str]:
    path = tmp_path / f"rollout-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(yaml.safe_dump(stack.spec))
    argv = [a.replace("{spec}", str(path)) for a in args]
    return await run_cli(stack.env, *argv, timeout=120)


def versions_served(url: str, requests: int = 30) -> Counter[str]:
    """Which versions answer through NGINX, on fresh connections."""
    seen: Counter[str] = Counter()
    for _ in range(requests):
        try:
            body = urllib.request.urlopen(url, timeout=2).read().decode()
        except urllib.error.HTTPError as exc:
            body = exc.read().decode()
        seen[body.split()[1] if len(body.split()) > 1 else body] += 1
    return seen


async def test_cli_wait_promotes_a_healthy_version(stack: Stack, tmp_path: Path):
    code, out, err = await deployflow(stack, tmp_path, "rollout", "start", "{spec}", "--wait")
    assert code == 0, err
    assert "Promoted" in out
    assert "error-rate #3" in err  # measurements were streamed
    assert "stable 0 % / canary 100 %" in err
    await asyncio.sleep(0)  # (NGINX swaps workers ~0.1 s after reload; poll below)
    for _ in range(50):
        if set(versions_served(stack.nginx_url, 10)) == {"v2"}:
            break
    assert set(versions_served(stack.nginx_url)) == {"v2"}
    code, out, err = await deployflow(
        stack, tmp_path, "rollout", "status", "checkout", "--env", stack.spec["spec"]["environment"]
    )
    assert code == 0, err
    assert "Promoted — all steps completed" in out
    assert "weights   stable 0 % / canary 100 %" in out


async def test_cli_wait_rolls_back_a_version_that_returns_5xx(stack: Stack, tmp_path: Path):
    stack.canary.set_error_rate(1.0)
    code, out, err = await deployflow(
        stack, tmp_path, "rollout", "start", "{spec}", "--wait", "--json"
    )
    assert code == 1, err
    assert '"outcome":"RolledBack"' in out
    assert "analysis step-1 Failed" in out
    env = stack.spec["spec"]["environment"]

    async def listed() -> list[dict[str, Any]]:
        code, out, err = await deployflow(
            stack, tmp_path, "history", "checkout", "--env", env, "--json"
        )
        assert code == 0, err
        rows: list[dict[str, Any]] = json.loads(out)
        return rows

    # Visibility catches up with the close shortly after.
    rows = await poll(listed, "the rolled-back rollout in history", 20, every_s=0.2)
    assert rows[0]["version"] == "v2"
    assert rows[0]["outcome"] == "RolledBack"
    assert rows[0]["reason"].startswith("analysis step-1 Failed")
    for _ in range(50):
        if set(versions_served(stack.nginx_url, 10)) == {"v1"}:
            break
    assert set(versions_served(stack.nginx_url)) == {"v1"}


async def test_broken_nginx_test_command_leaves_the_old_config_serving(
    stack: Stack, tmp_path: Path
):
    nginx = stack.spec["spec"]["router"]["nginx"]
    nginx["testCommand"] = ["/bin/sh", "-c", "echo 'nginx: [emerg] broken config' >&2; exit 1"]
    code, out, err = await deployflow(stack, tmp_path, "rollout", "start", "{spec}", "--wait")
    assert code == 1, err
    assert "RolledBack" in out
    assert "broken config" in out
    assert set(versions_served(stack.nginx_url)) == {"v1"}


async def test_second_rollout_of_the_same_service_and_environment_is_refused(
    stack: Stack, tmp_path: Path
):
    stack.spec["spec"]["strategy"]["canary"]["steps"] = [{"setWeight": 10}, {"pause": {}}]
    code, _, err = await deployflow(stack, tmp_path, "rollout", "start", "{spec}")
    assert code == 0, err
    code, _, err = await deployflow(stack, tmp_path, "rollout", "start", "{spec}")
    assert code == 2, err
    assert "already running" in err
    env = stack.spec["spec"]["environment"]
    code, out, err = await deployflow(
        stack, tmp_path, "rollout", "abort", "checkout", "--env", env, "--reason", "test over"
    )
    assert code == 0, err
    assert "aborting" in out
